-- description: Principals first seen in the window: active between since and until, not in the lookback before
-- param: since          time    required                       Start of the window (ISO 8601, UTC)
-- param: until          time    optional  2100-01-01T00:00:00Z  End of the window (exclusive)
-- param: lookback_days  int     optional  7                     How far before `since` a principal counts as known
-- param: cluster        string  optional  ''                    Only this cluster ('' for all)
WITH active AS (
  SELECT
    cluster,
    principal_name,
    min(actor_user_name) AS actor_user_name,
    min(iam_arn) AS iam_arn,
    min(time) AS first_time,
    max(time) AS last_time,
    count(DISTINCT audit_id) AS requests,
    count(DISTINCT src_ip) AS source_ips,
    min(src_ip) AS first_src_ip,
    min(user_agent) AS user_agent
  FROM audit_events
  WHERE stage <> 'RequestReceived'
    AND time >= CAST($since AS TIMESTAMP) - CAST($lookback_days AS INTEGER) * INTERVAL 1 DAY
    AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
  GROUP BY cluster, principal_name
)
SELECT *
FROM active
WHERE first_time >= CAST($since AS TIMESTAMP)
ORDER BY first_time, principal_name
