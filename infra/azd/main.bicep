// `azd up` entry point, in the Azure-Samples style: subscription scope, one resource group per azd
// environment, then infra/main.bicep (the same template infra/deploy.sh deploys) inside it.
// Its parameters are main.bicep's, by the same names and with the same defaults (tests/infra checks
// both), and come from main.parameters.json beside this file: the one parameter file, which
// infra/deploy.sh resolves the same way (infra/params.py).
targetScope = 'subscription'

@minLength(1)
@maxLength(32)
@description('azd environment name (AZURE_ENV_NAME); names the resource group rg-<name>.')
param environmentName string

@minLength(1)
@description('Azure region (AZURE_LOCATION); must offer Flex Consumption.')
param location string

param pipedriveCompanyDomain string
param pipedriveAuthMode string = 'api_token'
param pipedriveWebhookUser string = 'pipedrive'
param d365EnvironmentUrl string
param d365TenantId string = tenant().tenantId
param d365ClientId string = ''
param d365DefaultLegalEntity string
param d365Credential string = 'client_secret'
param pollSchedule string = '0 */5 * * * *'
param masterSchedule string = '0 0 * * * *'
param reconcileSchedule string = '30 */5 * * * *'
param mappingFile string = 'config/mapping.yaml'
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 40
param alwaysReadyHttpInstances int = 0
param logRetentionInDays int = 30
param alertEmail string = ''
param pollIntervalMinutes int = 5
param throttledPercentThreshold int = 5
param alertsEnabled bool = true

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID): Key Vault Secrets Officer so the hook can write secrets.')
param deployerPrincipalId string = ''
param deployerPrincipalType string = 'User'

var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// Named ml-connector-*: infra/deploy.sh --skip-infra (the postprovision hook) finds its outputs by that prefix.
module app '../main.bicep' = {
  name: 'ml-connector-azd'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    pipedriveCompanyDomain: pipedriveCompanyDomain
    pipedriveAuthMode: pipedriveAuthMode
    pipedriveWebhookUser: pipedriveWebhookUser
    d365EnvironmentUrl: d365EnvironmentUrl
    d365TenantId: d365TenantId
    d365ClientId: d365ClientId
    d365DefaultLegalEntity: d365DefaultLegalEntity
    d365Credential: d365Credential
    pollSchedule: pollSchedule
    masterSchedule: masterSchedule
    reconcileSchedule: reconcileSchedule
    mappingFile: mappingFile
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    logRetentionInDays: logRetentionInDays
    alertEmail: alertEmail
    pollIntervalMinutes: pollIntervalMinutes
    throttledPercentThreshold: throttledPercentThreshold
    alertsEnabled: alertsEnabled
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = app.outputs.FUNCTION_APP_NAME
output FUNCTION_APP_HOSTNAME string = app.outputs.FUNCTION_APP_HOSTNAME
output KEY_VAULT_NAME string = app.outputs.KEY_VAULT_NAME
output APP_INSIGHTS_NAME string = app.outputs.APP_INSIGHTS_NAME
output OPERATIONS_WORKBOOK_ID string = app.outputs.OPERATIONS_WORKBOOK_ID
