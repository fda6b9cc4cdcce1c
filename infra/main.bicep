// ml-connector on Azure: Flex Consumption function app + storage (queues, tables, deployment
// container) + Key Vault + monitoring, wired with one user-assigned managed identity and
// least-privilege RBAC. Resource-group scoped: `az group create` first (infra/deploy.sh does it).
// No secret is ever an app setting: the app gets KEY_VAULT_URL and reads/writes secrets itself.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(32)
@description('Short environment name (e.g. prod, test); part of every resource name.')
param environmentName string

@description('Azure region; must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

param tags object = {}

// ---- Pipedrive -------------------------------------------------------------------------------
@description('Pipedrive company domain: the "acme" in https://acme.pipedrive.com.')
param pipedriveCompanyDomain string

@allowed([
  'api_token'
  'oauth'
])
param pipedriveAuthMode string = 'api_token'

@description('User name Pipedrive sends with Basic auth on webhook deliveries (the password is a Key Vault secret).')
param pipedriveWebhookUser string = 'pipedrive'

// ---- Dynamics 365 F&O ------------------------------------------------------------------------
@description('F&O environment URL, e.g. https://contoso.operations.dynamics.com (no trailing slash).')
param d365EnvironmentUrl string

@description('Entra tenant of the F&O environment.')
param d365TenantId string = tenant().tenantId

@description('Application (client) id registered in F&O "Microsoft Entra applications". Empty with d365Credential=managed_identity = the app\'s own identity.')
param d365ClientId string = ''

@description('Default legal entity (dataAreaId), e.g. usmf.')
param d365DefaultLegalEntity string

@allowed([
  'client_secret'
  'managed_identity'
  'certificate'
])
param d365Credential string = 'client_secret'

// ---- Connector behaviour ---------------------------------------------------------------------
@description('NCRONTAB (6 fields, UTC on Flex) for the won-deal poll.')
param pollSchedule string = '0 */5 * * * *'

@description('NCRONTAB (6 fields, UTC on Flex) for the full D365 -> Pipedrive master diff.')
param masterSchedule string = '0 0 * * * *'

@description('NCRONTAB (UTC) of the reconciler that re-queues stranded jobs.')
param reconcileSchedule string = '30 */5 * * * *'

@description('Mapping file path inside the deployed package.')
param mappingFile string = 'config/mapping.yaml'

// ---- Scale -----------------------------------------------------------------------------------
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@minValue(0)
param alwaysReadyHttpInstances int = 0

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

// ---- Alerts (infra/modules/alerts.bicep; queries in infra/kql, explained in docs/operations.md) ------
@description('E-mail address that receives the operator alerts. Empty: the action group has no receiver yet.')
param alertEmail string = ''

@minValue(1)
@maxValue(60)
@description('Minutes between polls; keep equal to pollSchedule ("no successful poll" = three intervals).')
param pollIntervalMinutes int = 5

@minValue(1)
@maxValue(100)
@description('Share of 429 answers (percent of one API\'s calls in 15 minutes) that raises the throttling alert.')
param throttledPercentThreshold int = 5

param alertsEnabled bool = true

// ---- Access for the deployer -----------------------------------------------------------------
@description('Object id of the deploying user or pipeline; gets Key Vault Secrets Officer on the vault. Empty = none.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

// ---- Names -----------------------------------------------------------------------------------
var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var env = toLower(take(replace(environmentName, '_', '-'), 12))
var names = {
  identity: 'id-mlconn-${env}-${token}'
  logAnalytics: 'log-mlconn-${env}-${token}'
  appInsights: 'appi-mlconn-${env}-${token}'
  storage: take('stmlconn${token}', 24)
  keyVault: take('kv-mlconn-${token}', 24)
  plan: 'plan-mlconn-${env}-${token}'
  app: 'func-mlconn-${env}-${token}'
  deploymentContainer: 'app-package-${take(token, 7)}'
}
// With managed_identity, F&O sees the user-assigned identity's client id (register THAT in F&O).
var d365ClientIdValue = !empty(d365ClientId) || d365Credential != 'managed_identity' ? d365ClientId : identity.outputs.clientId
var allTags = union(tags, { app: 'ml-connector', environment: environmentName })

// Queue and table names: the defaults of connector.settings (ORDER_QUEUE, MASTER_QUEUE, tables
// derived with an empty TABLE_PREFIX). The host moves a message to "<queue>-poison" after
// host.json maxDequeueCount attempts.
var orderQueue = 'order-build'
var masterQueue = 'master-push'
var queueNames = [
  orderQueue
  '${orderQueue}-poison'
  masterQueue
  '${masterQueue}-poison'
]
var tableNames = [
  'jobs'
  'audit'
  'idmap'
  'checkpoints'
]

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    retentionInDays: logRetentionInDays
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    appInsightsId: monitoring.outputs.appInsightsId
    location: location
    tags: allTags
    namePrefix: 'mlconn-${env}'
    alertEmail: alertEmail
    pollIntervalMinutes: pollIntervalMinutes
    throttledPercentThreshold: throttledPercentThreshold
    alertsEnabled: alertsEnabled
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: allTags
    deploymentContainerName: names.deploymentContainer
    queueNames: queueNames
    tableNames: tableNames
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: allTags
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  dependsOn: [
    rbac // the host must be able to read its deployment container and storage when it starts
  ]
  params: {
    planName: names.plan
    appName: names.app
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: names.deploymentContainer
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    // Names are the env names of connector.settings.Settings. Values are never secrets.
    connectorSettings: {
      PIPEDRIVE_COMPANY_DOMAIN: pipedriveCompanyDomain
      PIPEDRIVE_AUTH_MODE: pipedriveAuthMode
      PIPEDRIVE_WEBHOOK_USER: pipedriveWebhookUser
      D365_ENVIRONMENT_URL: d365EnvironmentUrl
      D365_TENANT_ID: d365TenantId
      D365_CLIENT_ID: d365ClientIdValue
      D365_DEFAULT_LEGAL_ENTITY: d365DefaultLegalEntity
      D365_CREDENTIAL: d365Credential
      KEY_VAULT_URL: keyVault.outputs.uri
      ORDER_QUEUE: orderQueue
      MASTER_QUEUE: masterQueue
      POLL_SCHEDULE: pollSchedule
      MASTER_SCHEDULE: masterSchedule
      RECONCILE_SCHEDULE: reconcileSchedule
      MAPPING_FILE: mappingFile
    }
  }
}

output AZURE_RESOURCE_GROUP string = resourceGroup().name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APP_INSIGHTS_NAME string = monitoring.outputs.appInsightsName
output ALERT_ACTION_GROUP_ID string = alerts.outputs.actionGroupId
output OPERATIONS_WORKBOOK_ID string = alerts.outputs.workbookId
output IDENTITY_CLIENT_ID string = identity.outputs.clientId
output IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
