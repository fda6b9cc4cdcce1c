// Key Vault for the connector's credentials (Pipedrive token or OAuth client + refresh token,
// webhook password, D365 client secret). RBAC authorization (no access policies), soft delete and
// purge protection on. The app reads AND writes secrets (refreshed Pipedrive OAuth tokens are
// written back), so it gets Key Vault Secrets Officer on this vault only (see rbac.bicep).
// The connector uses the Key Vault SDK, not @Microsoft.KeyVault app-setting references: references
// do not resolve on Flex Consumption when the vault is network-restricted (docs/api-facts.md, Azure Functions §1).

param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without VNet integration has no fixed outbound address and is not a trusted service, so a deny-by-default firewall locks the app out; access is RBAC to the app's identity only
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: the app reads its secrets over the public endpoint (Key Vault references would not help: they fail on Flex when the vault is restricted)
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
