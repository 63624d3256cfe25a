-- Gateways keep answers the hot paths need (who may do what: sessions, API keys, project
-- permissions; which nodes serve inference) in memory, so a chat completion skips their queries.
-- Any change to the tables those answers come from, by whatever code path and from whichever
-- gateway process, announces itself and every process drops its copies (server/db/memo.ts).
-- Statement-level triggers: one notification per statement, not per row.

CREATE FUNCTION notify_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('access_changed', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

CREATE FUNCTION notify_nodes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('nodes_changed', '');
  RETURN NULL;
END
$$;

-- What decides whether and where a node serves inference (server/nodes/store.ts servingCondition).
CREATE TRIGGER nodes_changed AFTER INSERT OR DELETE OR UPDATE OF status, admin_state, config_ack_status, config_ack_version,
  config_version, worker_api_target_url, worker_api_token_ciphertext, capability, labels ON nodes
  FOR EACH STATEMENT EXECUTE FUNCTION notify_nodes_changed();

-- Only the columns that decide access: logins and refreshes touch other columns of these tables.
CREATE TRIGGER users_access_changed AFTER UPDATE OF is_active, handle OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER auth_sessions_access_changed AFTER UPDATE OF is_active, expires_at OR DELETE ON auth_sessions
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER api_keys_access_changed AFTER UPDATE OF revoked_at, expires_at, user_id OR DELETE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();

CREATE TRIGGER projects_access_changed AFTER INSERT OR UPDATE OR DELETE ON projects
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER groups_access_changed AFTER INSERT OR UPDATE OR DELETE ON groups
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER group_memberships_access_changed AFTER INSERT OR UPDATE OR DELETE ON group_memberships
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER role_bindings_access_changed AFTER INSERT OR UPDATE OR DELETE ON role_bindings
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
CREATE TRIGGER role_permissions_access_changed AFTER INSERT OR UPDATE OR DELETE ON role_permissions
  FOR EACH STATEMENT EXECUTE FUNCTION notify_access_changed();
