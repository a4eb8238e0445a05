-- description: Who read or changed which secrets: one row per principal, verb and secret, with counts
-- param: principal  string  optional  ''                    Only this principal ('' for all): resolved name, username or IAM ARN
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
    AND resource_type = 'secrets'
    AND ($principal = '' OR principal_name = $principal OR actor_user_name = $principal OR iam_arn = $principal OR session_arn = $principal)
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  cluster,
  principal_name,
  api_operation AS verb,
  coalesce(namespace, '') AS namespace,
  coalesce(resource_name, '') AS name,
  count(*) AS requests,
  count_if(decision = 'forbid' OR response_code >= 400) AS failed,
  min(time) AS first_time,
  max(time) AS last_time,
  count(DISTINCT src_ip) AS source_ips
FROM matched
WHERE stage_rank = 1
GROUP BY cluster, principal_name, api_operation, coalesce(namespace, ''), coalesce(resource_name, '')
ORDER BY first_time, principal_name, verb, namespace, name
