-- description: Every request of one principal, in time order (one row per request, at its final stage)
-- param: principal  string  required                       Resolved name (SSO user, system:serviceaccount:NS:NAME, system:node:...), Kubernetes username or IAM ARN
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
    AND (principal_name = $principal OR actor_user_name = $principal OR iam_arn = $principal OR session_arn = $principal)
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  time,
  cluster,
  audit_id,
  stage,
  api_operation AS verb,
  resource_type AS resource,
  namespace,
  resource_name AS name,
  subresource,
  response_code,
  decision,
  src_ip,
  user_agent
FROM matched
WHERE stage_rank = 1
ORDER BY time, audit_id
