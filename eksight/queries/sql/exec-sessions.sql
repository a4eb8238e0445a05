-- description: Interactive sessions into pods (exec, attach, port-forward) with their commands
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
    AND resource_type = 'pods'
    AND subresource IN ('exec', 'attach', 'portforward')
    AND ($principal = '' OR principal_name = $principal OR actor_user_name = $principal OR iam_arn = $principal OR session_arn = $principal)
    AND time >= CAST($since AS TIMESTAMP) AND time < CAST($until AS TIMESTAMP)
    AND ($cluster = '' OR cluster = $cluster)
)
SELECT
  time,
  cluster,
  principal_name,
  subresource,
  namespace,
  resource_name AS pod,
  url_decode(regexp_extract(request_uri, '[?&]container=([^&]*)', 1)) AS container,
  url_decode(array_to_string(regexp_extract_all(request_uri, '[?&]command=([^&]*)', 1), ' ')) AS command,
  response_code,
  decision,
  src_ip,
  user_agent,
  audit_id
FROM matched
WHERE stage_rank = 1
ORDER BY time, audit_id
