-- description: Changes to RBAC (roles, bindings) and to the aws-auth ConfigMap, in time order
-- param: since      time    optional  1970-01-01T00:00:00Z  Start of the window (ISO 8601, UTC)
-- param: until      time    optional  2100-01-01T00:00:00Z  End of the window (exclusive)
-- param: cluster    string  optional  ''                    Only this cluster ('' for all)
WITH matched AS (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY cluster, audit_id ORDER BY stage = 'ResponseComplete' DESC, stage_time DESC
    ) AS stage_rank
  FROM audit_events
  WHERE stage <> 'RequestReceived'
    AND api_operation IN ('create', 'update', 'patch', 'delete', 'deletecollection')
    AND (
      api_group = 'rbac.authorization.k8s.io'
      OR (resource_type = 'configmaps' AND namespace = 'kube-system' AND resource_name = 'aws-auth')
    )
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  time,
  cluster,
  principal_name,
  api_operation AS verb,
  resource_type AS resource,
  namespace,
  resource_name AS name,
  response_code,
  decision,
  src_ip,
  user_agent,
  audit_id
FROM matched
WHERE stage_rank = 1
ORDER BY time, audit_id
