-- A lone chat message or answer is written through a function: PL/pgSQL keeps its statements'
-- plans for the session, and planning was most of the cost of the same write as one statement
-- (on PGlite about 0.35 ms instead of 0.6-0.75 ms). The user message's write sits on the way to a
-- chat's first token. Batches keep their set-based statements (server/chat/store.ts), which store
-- the same rows these would, one call per item.

-- A message into an existing thread, which it marks as just used. Nothing when the thread is gone,
-- or has been idle for longer than p_active_within_hours (when given: the active-thread rule).
CREATE FUNCTION chat_append_message(p_id uuid, p_thread_id uuid, p_role text, p_content text, p_metadata jsonb, p_active_within_hours integer)
RETURNS SETOF chat_messages LANGUAGE plpgsql AS $$
BEGIN
  UPDATE chat_threads SET updated_at = now()
  WHERE id = p_thread_id AND (p_active_within_hours IS NULL OR updated_at > now() - make_interval(hours => p_active_within_hours));
  IF FOUND THEN
    RETURN QUERY INSERT INTO chat_messages (id, thread_id, role, content, metadata)
      VALUES (p_id, p_thread_id, p_role, p_content, p_metadata) RETURNING *;
  END IF;
END $$;

-- A completion's answer with its audit row (p_audit: chat_audit_log's columns by name), both or
-- neither: false when the thread is gone.
CREATE FUNCTION chat_append_answer(p_id uuid, p_thread_id uuid, p_content text, p_metadata jsonb, p_audit jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM chat_append_message(p_id, p_thread_id, 'assistant', p_content, p_metadata, NULL);
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO chat_audit_log (user_id, project_id, thread_id, outcome, error_code, model, node_id, stream, attempts, redaction_applied, redaction_kinds, duration_ms, request_id)
  SELECT user_id, project_id, thread_id, outcome, error_code, model, node_id, stream, attempts, redaction_applied, redaction_kinds, duration_ms, request_id
  FROM jsonb_populate_record(NULL::chat_audit_log, p_audit);
  RETURN true;
END $$;
