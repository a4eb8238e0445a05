-- description: Events around a finding: its principal's and source IPs' requests within ± window of it, evidence marked
-- param: finding         string  required                        Finding id (from the findings view)
-- param: window_minutes  int     optional  30                    Minutes before the finding's first and after its last event
-- param: since           time    optional  1970-01-01T00:00:00Z  Only events from (narrows what Athena scans)
-- param: until           time    optional  2100-01-01T00:00:00Z  Only events before (narrows what Athena scans)
WITH finding AS (
  SELECT *
  FROM findings
  WHERE id = $finding
),
matched AS (
  SELECT
    a.*,
    list_contains(f.evidence, a.audit_id) AS is_evidence,
    row_number() OVER (
      PARTITION BY a.cluster, a.audit_id ORDER BY a.stage = 'ResponseComplete' DESC, a.stage_time DESC
    ) AS stage_rank
  FROM audit_events AS a
  CROSS JOIN finding AS f
  WHERE a.stage <> 'RequestReceived'
    AND (f.cluster = '' OR a.cluster = '' OR a.cluster = f.cluster)
    AND (a.principal_name = f.principal_name OR list_contains(f.evidence, a.audit_id) OR list_contains(f.source_ips, a.src_ip))
    AND a.time >= f.first_seen - CAST($window_minutes AS INTEGER) * INTERVAL 1 MINUTE
    AND a.time <= f.last_seen + CAST($window_minutes AS INTEGER) * INTERVAL 1 MINUTE
    AND a.time >= CAST($since AS TIMESTAMP) AND a.time < CAST($until AS TIMESTAMP)
)
SELECT
  time,
  cluster,
  is_evidence,
  principal_name,
  api_operation AS verb,
  resource_type AS resource,
  namespace,
  resource_name AS name,
  subresource,
  response_code,
  decision,
  src_ip,
  user_agent,
  audit_id
FROM matched
WHERE stage_rank = 1
ORDER BY time, audit_id
