-- Connector calls an agent makes are decided for the agent's role as well as for its user
-- (server/connectors/policy.ts). The project manager may reach its user's connectors; the other
-- roles may not until an admin writes a rule. It must equal its rule in DEFAULT_RULES
-- (server/policy/default-rules.ts; tests/integration/policy.test.ts checks).
INSERT INTO policy_rules (id, name, description, text, is_default) VALUES
  ('default-agent-project-manager-connectors', 'Project manager agents invoke their user''s connectors',
   'An agent in the project_manager role may invoke the connector operations its user may invoke.',
   $$permit (principal is Agent in Role::"project_manager", action == Action::"connector.invoke", resource is Operation);$$, true);
