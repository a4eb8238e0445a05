-- description: Requests from outside the cluster's networks (not private, CGNAT, loopback or link-local), per source IP and principal
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
    AND src_ip IS NOT NULL AND src_ip <> ''
    -- RFC 1918, RFC 6598 (CGNAT, EKS pod networking), loopback, link-local; IPv6 ULA, link-local, loopback.
    AND NOT regexp_matches(
      lower(src_ip),
      '^(10\.|192\.168\.|127\.|169\.254\.|172\.(1[6-9]|2[0-9]|3[01])\.|100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.|::1$|f[cd][0-9a-f]{2}:|fe[89ab][0-9a-f]:)'
    )
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  cluster,
  src_ip,
  principal_name,
  count(*) AS requests,
  count_if(response_code >= 400) AS failed,
  count(DISTINCT api_operation) AS verbs,
  min(time) AS first_time,
  max(time) AS last_time,
  min(user_agent) AS user_agent
FROM matched
WHERE stage_rank = 1
GROUP BY cluster, src_ip, principal_name
ORDER BY first_time, src_ip, principal_name
