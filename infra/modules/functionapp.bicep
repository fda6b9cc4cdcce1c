// Flex Consumption plan (FC1) + Linux Python function app running as the user-assigned identity.
// Shape follows Azure-Samples/functions-quickstart-python-http-azd (infra/core/host/
// functions-flexconsumption.bicep, app/processor.bicep): identity-based AzureWebJobsStorage__*,
// deployment package in a blob container read with the identity, App Insights with Entra auth.
// On Flex the runtime is set in functionAppConfig.runtime; FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE etc. are deprecated there and not emitted.

param planName string
param appName string
param location string
param tags object = {}

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

param storageAccountName string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param deploymentContainerName string

param appInsightsConnectionString string

@description('Connector app settings (names = connector.settings.Settings env names). Never secrets.')
param connectorSettings object

@allowed([
  '3.10'
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@minValue(0)
@description('Always-ready instances for the HTTP group (webhooks). 0 = scale to zero.')
param alwaysReadyHttpInstances int = 0

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption needs at least 2 always-ready instances (billed around the clock) and a region that offers it; a queue-driven connector recovers by retry instead
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// Settings the platform needs; merged last so connectorSettings can never override them.
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // DefaultAzureCredential (Key Vault, storage SDK clients) picks the user-assigned identity by this.
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the Pipedrive webhook and D365 business events arrive from the internet: the endpoint must be public (webhook Basic auth, function keys for the rest)
  // checkov:skip=CKV_AZURE_17: Pipedrive and D365 cannot send client certificates; callers authenticate with Basic auth (webhook) or a function key
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero and starts instances on demand; always-ready instances are the alwaysReadyHttpInstances parameter (a cost choice)
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'connector' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      healthCheckPath: '/api/health' // the anonymous up/down probe: storage reachable, nothing else said
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Zero or one entry: warm instances for the HTTP group (the webhooks) only.
        alwaysReady: [
          for group in range(0, alwaysReadyHttpInstances > 0 ? 1 : 0): {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ]
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }

}

// These checks read an App Service's 'web' config; this resource is the 'appsettings' config (names and
// values only), so each is skipped here with what actually covers it.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: callers authenticate per route (webhook Basic auth, function keys); App Service Authentication would refuse Pipedrive and D365
  // checkov:skip=CKV_AZURE_63: not the web config; logs and requests go to Application Insights (APPLICATIONINSIGHTS_CONNECTION_STRING)
  // checkov:skip=CKV_AZURE_65: not the web config; detailed error pages are for IIS/Windows sites, and our routes answer JSON errors
  // checkov:skip=CKV_AZURE_66: not the web config; failed requests are traced in Application Insights
  // checkov:skip=CKV_AZURE_80: not the web config; a Python app on Linux has no .NET Framework version
  // checkov:skip=CKV_AZURE_88: not the web config; Flex Consumption deploys from a blob container, there is no Azure Files content share
  // checkov:skip=CKV_AZURE_222: not the web config; public network access is decided on the site (see the skip there: webhooks come from the internet)
  parent: app
  name: 'appsettings'
  properties: union(connectorSettings, platformSettings)
}

output name string = app.name
output id string = app.id
output defaultHostName string = app.properties.defaultHostName
