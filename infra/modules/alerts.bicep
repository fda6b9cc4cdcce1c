// Operator alerts and the operations workbook over Application Insights.
// Every query is a file in infra/kql/ (also shown in docs/operations.md); they read the connector's
// telemetry records (`TELEMETRY {json}` trace lines, connector/telemetry.py) and the host's requests.

@description('Application Insights component the queries run on (resource id).')
param appInsightsId string

param location string
param tags object = {}

@description('Short name used in the alert and action-group names.')
param namePrefix string

@description('Who gets the alert e-mails. Empty: the action group is created without a receiver (add one in the portal).')
param alertEmail string = ''

@minValue(1)
@maxValue(60)
@description('Minutes between polls (must match POLL_SCHEDULE); "no successful poll" fires after three of them.')
param pollIntervalMinutes int = 5

@minValue(1)
@maxValue(100)
@description('Percent of an API\'s calls answered 429 in 15 minutes above which the throttling alert fires.')
param throttledPercentThreshold int = 5

@description('Turn the alert rules off (e.g. in a test environment) without removing them.')
param alertsEnabled bool = true

var receivers = empty(alertEmail) ? [] : [
  {
    name: 'operator'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${namePrefix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('mlconn${uniqueString(namePrefix)}', 12)
    enabled: true
    emailReceivers: receivers
  }
}

var pollWindowMinutes = pollIntervalMinutes * 3
var rules = [
  {
    name: 'failed-job'
    title: 'ml-connector: a job failed'
    description: 'An order build or master push ended failed; the reason is in the alert\'s query results and on the admin page.'
    severity: 2
    query: loadTextContent('../kql/alert-failed-job.kql')
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT5M'
    frequency: 'PT5M'
  }
  {
    name: 'poison-message'
    title: 'ml-connector: message in a poison queue'
    description: 'A queue message gave up after maxDequeueCount attempts; replay it from the admin page or with `ml-connector replay --poison`.'
    severity: 2
    query: loadTextContent('../kql/alert-poison.kql')
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
  {
    name: 'no-successful-poll'
    title: 'ml-connector: no successful poll for three intervals'
    description: 'The won-deal poll (the backup for missed webhooks) has not succeeded for three poll intervals.'
    severity: 1
    query: loadTextContent('../kql/alert-successful-polls.kql')
    operator: 'LessThan'
    threshold: 1
    window: 'PT${pollWindowMinutes}M'
    frequency: 'PT5M'
  }
  {
    name: 'function-failures'
    title: 'ml-connector: function invocations failed'
    description: 'A function raised (the host retries queue messages; repeated failures end in the poison queue).'
    severity: 2
    query: loadTextContent('../kql/alert-function-failures.kql')
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT5M'
    frequency: 'PT5M'
  }
  {
    name: 'throttled'
    title: 'ml-connector: API throttling above ${throttledPercentThreshold}%'
    description: 'Pipedrive or D365 answered 429 to more than the threshold share of calls: lower host.json batchSize or maximumInstanceCount, or raise the plan.'
    severity: 3
    query: replace(loadTextContent('../kql/alert-throttled.kql'), '{threshold}', string(throttledPercentThreshold))
    operator: 'GreaterThan'
    threshold: 0
    window: 'PT15M'
    frequency: 'PT5M'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for rule in rules: {
  name: 'alert-${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.title
    description: rule.description
    severity: rule.severity
    enabled: alertsEnabled
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: rule.operator
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

// The operational view: one KQL tile per question an operator asks.
var tiles = [
  {
    title: 'Orders per hour'
    query: loadTextContent('../kql/workbook-orders-per-hour.kql')
    visualization: 'barchart'
  }
  {
    title: 'Failures with reasons'
    query: loadTextContent('../kql/workbook-failures.kql')
    visualization: 'table'
  }
  {
    title: 'Latency from won (queued) to order, seconds'
    query: loadTextContent('../kql/workbook-latency.kql')
    visualization: 'linechart'
  }
  {
    title: 'Queue and poison depths'
    query: loadTextContent('../kql/workbook-queues.kql')
    visualization: 'linechart'
  }
  {
    title: 'API calls and 429s per order'
    query: loadTextContent('../kql/workbook-calls-per-order.kql')
    visualization: 'table'
  }
]

var workbookContent = {
  version: 'Notebook/1.0'
  items: [for (tile, i) in tiles: {
    type: 3
    name: 'tile-${i}'
    content: {
      version: 'KqlItem/1.0'
      title: tile.title
      query: tile.query
      size: 0
      timeContext: {
        durationMs: 86400000
      }
      queryType: 0
      resourceType: 'microsoft.insights/components'
      visualization: tile.visualization
    }
  }]
  isLocked: false
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'ml-connector operations (${namePrefix})'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(workbookContent)
  }
}

output actionGroupId string = actionGroup.id
output alertRuleNames array = [for (rule, i) in rules: alertRules[i].name]
output workbookId string = workbook.id
