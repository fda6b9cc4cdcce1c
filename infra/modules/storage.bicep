// Storage account for the Functions host and the connector's state:
// - blob: the Flex Consumption deployment container (plus the host's own lease/timer blobs);
// - queues: the work queues and their poison queues (the host would create "<queue>-poison" itself,
//   but creating them here makes them visible to `status` before the first failure);
// - tables: jobs, audit, idmap, checkpoints (see docs/architecture.md, "State").
// Shared-key access is off: every client (host, connector, deployment) authenticates with Entra ID.

param name string
param location string
param tags object = {}

@description('Blob container that holds the deployed app package (Flex Consumption).')
param deploymentContainerName string

@description('Queues to create, poison queues included.')
param queueNames array

@description('Tables to create.')
param tableNames array

@description('Replication. Geo-redundant by default: the job and audit tables are the connector\'s memory.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_GRS'

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its storage over the public endpoint, and Functions is not a trusted service for the bypass; access is Entra ID only (shared keys off)
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: the host and the connector need the public endpoint; anonymous blob access and shared keys are off
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Child resources are top-level with `parent` (not nested loops): one level of nesting per block keeps the
// file readable and parseable by the security scanner (checkov), which cannot read a loop in a nested block.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2024-01-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
