-- description: Bursts of denied requests (401/403): one row per principal, source IP and hour
-- param: since      time    optional  1970-01-01T00:00:00Z  Start of the window (ISO 8601, UTC)
-- param: until      time    optional  2100-01-01T00:00:00Z  End of the window (exclusive)
-- param: cluster    string  optional  ''                    Only this cluster ('' for all)
-- param: min_count  int     optional  1                     Only bursts with at least this many denials
WITH matched AS (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY cluster, audit_id ORDER BY stage = 'ResponseComplete' DESC, stage_time DESC
    ) AS stage_rank
  FROM audit_events
  WHERE stage <> 'RequestReceived'
    AND response_code IN (401, 403)
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
),
bursts AS (
  SELECT
    cluster,
    date_trunc('hour', time) AS hour,
    coalesce(principal_name, '') AS principal_name,
    coalesce(src_ip, '') AS src_ip,
    count(*) AS denied,
    count_if(response_code = 401) AS unauthenticated,
    count(DISTINCT coalesce(resource_type, '') || '/' || coalesce(subresource, '')) AS resources,
    min(time) AS first_time,
    max(time) AS last_time,
    min(user_agent) AS user_agent
  FROM matched
  WHERE stage_rank = 1
  GROUP BY cluster, date_trunc('hour', time), coalesce(principal_name, ''), coalesce(src_ip, '')
)
SELECT *
FROM bursts
WHERE denied >= $min_count
ORDER BY hour, denied DESC, principal_name, src_ip
