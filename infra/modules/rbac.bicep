// Least-privilege role assignments for the app's managed identity, each on the narrowest scope:
//   storage account : Storage Blob Data Owner (host leases/timers + deployment package, as the
//                     Azure-Samples Flex template), Storage Queue Data Contributor, Storage Table
//                     Data Contributor;
//   key vault       : Key Vault Secrets Officer (read secrets AND write refreshed OAuth tokens);
//   app insights    : Monitoring Metrics Publisher (telemetry with Entra auth).
// Optionally the deploying user gets Key Vault Secrets Officer on the vault so deploy.sh can set
// the secrets. Role ids are built-in and identical in every tenant; the table in infra/README.md
// and tests/infra/test_bicep.py must list every id used here.

param principalId string

@description('Object id of the person/pipeline running the deployment; empty = none.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

param storageAccountName string
param keyVaultName string
param appInsightsName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The table of infra/README.md: who gets which role on which scope. An assignment's name is
// guid(scope, principal, role), so re-deploying finds the same assignment instead of adding one.
var app = {
  id: principalId
  type: 'ServicePrincipal'
}
var deployer = {
  id: deployerPrincipalId
  type: deployerPrincipalType
}
var assignments = [
  {
    scope: 'storage'
    role: 'storageBlobDataOwner'
    principal: app
  }
  {
    scope: 'storage'
    role: 'storageQueueDataContributor'
    principal: app
  }
  {
    scope: 'storage'
    role: 'storageTableDataContributor'
    principal: app
  }
  {
    scope: 'vault'
    role: 'keyVaultSecretsOfficer'
    principal: app
  }
  {
    scope: 'vault'
    role: 'keyVaultSecretsOfficer'
    principal: deployer
  }
  {
    scope: 'appInsights'
    role: 'monitoringMetricsPublisher'
    principal: app
  }
]

// A role assignment's scope must be a resource symbol, so one loop per kind of scope over the table.
resource onStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, x => x.scope == 'storage' && !empty(x.principal.id)): {
    name: guid(storage.id, a.principal.id, roles[a.role])
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[a.role])
      principalId: a.principal.id
      principalType: a.principal.type
    }
  }
]

resource onVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, x => x.scope == 'vault' && !empty(x.principal.id)): {
    name: guid(vault.id, a.principal.id, roles[a.role])
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[a.role])
      principalId: a.principal.id
      principalType: a.principal.type
    }
  }
]

resource onAppInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, x => x.scope == 'appInsights' && !empty(x.principal.id)): {
    name: guid(appInsights.id, a.principal.id, roles[a.role])
    scope: appInsights
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles[a.role])
      principalId: a.principal.id
      principalType: a.principal.type
    }
  }
]
