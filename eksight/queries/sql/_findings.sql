-- The `findings` view: one row per finding (eksight.core.findings.Finding.to_dict), over `findings_raw`,
-- which each engine defines over its own source (eksight.queries.sources).
SELECT
  id,
  type,
  severity,
  title,
  detector,
  rule_id,
  cluster,
  account,
  region,
  principal.name AS principal_name,
  principal.kind AS principal_kind,
  principal."key" AS principal_key,
  evidence,
  strptime(first_seen, '%Y-%m-%dT%H:%M:%S.%fZ') AS first_seen,
  strptime(last_seen, '%Y-%m-%dT%H:%M:%S.%fZ') AS last_seen,
  "count" AS event_count,
  source_ips,
  user_agents,
  suppressed_by
FROM findings_raw
