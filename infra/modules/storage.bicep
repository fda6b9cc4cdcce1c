// Storage account for the Functions host and the connector's state:
// - blob: the Flex Consumption deployment container (plus the host's own lease/timer blobs);
// - queues: the work queues and their poison queues (the host would create "<queue>-poison" itself,
//   but creating them here makes them visible to `status` before the first failure);
// - tables: jobs, audit, idmap, checkpoints (see DESIGN.md "State").
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

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param skuName string = 'Standard_LRS'

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
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

  resource blobService 'blobServices' = {
    name: 'default'
    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }

  resource queueService 'queueServices' = {
    name: 'default'
    resource queues 'queues' = [
      for queueName in queueNames: {
        name: queueName
      }
    ]
  }

  resource tableService 'tableServices' = {
    name: 'default'
    resource tables 'tables' = [
      for tableName in tableNames: {
        name: tableName
      }
    ]
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
