-- description: Requests by unauthenticated users (system:anonymous or the system:unauthenticated group)
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
    AND (actor_user_name IN ('system:anonymous', 'system:unauthenticated') OR list_contains(groups, 'system:unauthenticated'))
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  time,
  cluster,
  api_operation AS verb,
  request_uri,
  response_code,
  decision,
  reason,
  src_ip,
  user_agent,
  audit_id
FROM matched
WHERE stage_rank = 1
ORDER BY time, audit_id
