-- The `audit_events` view: one row per audit event occurrence (every stage), columns named after OCSF API
-- Activity where that is not awkward (docs/hunting.md). Reads `audit_messages(message, account, region,
-- cluster)`, which each engine defines over its own source (eksight/queries/sources.py). Times are UTC. Fields
-- are written by whoever reaches the API server: a malformed time or code is NULL (try/TRY_CAST), never an error.
SELECT
  *,
  -- The principal's name as eksight.core.identity resolves it: the Kubernetes username, unless that is an
  -- IAM ARN (access entry without a username template): then the person (session) of an IAM Identity Center
  -- role, else the role or user name.
  CASE
    WHEN NOT starts_with(coalesce(actor_user_name, ''), 'arn:') THEN actor_user_name
    WHEN starts_with(assumed_role, 'AWSReservedSSO_') AND session_name IS NOT NULL THEN session_name
    WHEN assumed_role <> '' THEN assumed_role
    ELSE regexp_extract(actor_user_name, '([^/:]+)$', 1)
  END AS principal_name
FROM (
  SELECT
    try(strptime(json_extract_string(message, '$.requestReceivedTimestamp'), '%Y-%m-%dT%H:%M:%S.%fZ')) AS time,
    try(strptime(json_extract_string(message, '$.stageTimestamp'), '%Y-%m-%dT%H:%M:%S.%fZ')) AS stage_time,
    json_extract_string(message, '$.auditID') AS audit_id,
    json_extract_string(message, '$.stage') AS stage,
    json_extract_string(message, '$.verb') AS api_operation,
    json_extract_string(message, '$.objectRef.resource') AS resource_type,
    json_extract_string(message, '$.objectRef.subresource') AS subresource,
    json_extract_string(message, '$.objectRef.namespace') AS namespace,
    json_extract_string(message, '$.objectRef.name') AS resource_name,
    json_extract_string(message, '$.objectRef.apiGroup') AS api_group,
    json_extract_string(message, '$.requestURI') AS request_uri,
    json_extract_string(message, '$.user.username') AS actor_user_name,
    json_extract_string(message, '$.user.uid') AS actor_user_uid,
    TRY_CAST(json_extract(message, '$.user.groups') AS VARCHAR[]) AS groups,
    coalesce(
      json_extract_string(message, '$.user.extra.canonicalArn[0]'),
      json_extract_string(message, '$.user.extra.arn[0]')
    ) AS iam_arn,
    json_extract_string(message, '$.user.extra.arn[0]') AS session_arn,
    coalesce(
      nullif(json_extract_string(message, '$.user.extra.sessionName[0]'), ''),
      nullif(regexp_extract(json_extract_string(message, '$.user.username'), ':assumed-role/[^/]+/(.+)$', 1), '')
    ) AS session_name,
    coalesce(
      nullif(regexp_extract(json_extract_string(message, '$.user.extra.canonicalArn[0]'), ':role/(.*/)?([^/]+)$', 2), ''),
      regexp_extract(json_extract_string(message, '$.user.username'), ':assumed-role/([^/]+)/', 1)
    ) AS assumed_role,
    json_extract_string(message, '$.sourceIPs[0]') AS src_ip,
    json_extract_string(message, '$.userAgent') AS user_agent,
    TRY_CAST(json_extract_string(message, '$.responseStatus.code') AS INTEGER) AS response_code,
    json_extract_string(message, '$.annotations."authorization.k8s.io/decision"') AS decision,
    json_extract_string(message, '$.annotations."authorization.k8s.io/reason"') AS reason,
    json_extract_string(message, '$.impersonatedUser.username') AS impersonated_user,
    account,
    region,
    cluster,
    message
  FROM audit_messages
) AS parsed
