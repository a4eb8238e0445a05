-- description: Who touched one object (KIND/NS/NAME, or KIND/NAME if cluster-scoped), in time order
-- param: resource   resource  required                       KIND/NAMESPACE/NAME or KIND/NAME (kind as in the API path, e.g. secrets; singular is accepted)
-- param: since      time      optional  1970-01-01T00:00:00Z  Start of the window (ISO 8601, UTC)
-- param: until      time      optional  2100-01-01T00:00:00Z  End of the window (exclusive)
-- param: cluster    string    optional  ''                    Only this cluster ('' for all)
WITH matched AS (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY cluster, audit_id ORDER BY stage = 'ResponseComplete' DESC, stage_time DESC
    ) AS stage_rank
  FROM audit_events
  WHERE stage <> 'RequestReceived'
    AND (resource_type = $resource_kind OR resource_type = $resource_kind_plural)
    AND coalesce(namespace, '') = $resource_namespace
    AND resource_name = $resource_name
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  time,
  cluster,
  principal_name,
  actor_user_name,
  api_operation AS verb,
  subresource,
  response_code,
  decision,
  src_ip,
  user_agent,
  audit_id
FROM matched
WHERE stage_rank = 1
ORDER BY time, audit_id
