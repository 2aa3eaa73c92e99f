-- The PostgreSQL store's enqueue_command (counter upsert + INSERT, then NOTIFY) then claim_commands (max 1) statements, one desktop
-- per pgbench client, as store_bench does through the plugin. "now" is now() (stable within the
-- statement, so usable as an index bound like the plugin's parameter; clock_timestamp() is not).
-- The desktop's seq comes from its counter row in the same statement (docs/stores.md, "Command order").
WITH s AS (INSERT INTO desktop_command_seqs (desktop_client_id, last_seq) VALUES ('bench-desk-' || :client_id::text, 1)
             ON CONFLICT (desktop_client_id) DO UPDATE SET last_seq = desktop_command_seqs.last_seq + 1 RETURNING last_seq)
INSERT INTO desktop_commands (id, desktop_client_id, command_type, command_data, target_instance_id, status, origin, created_at, attempts, seq)
  SELECT gen_random_uuid()::text, 'bench-desk-' || :client_id::text, 'input', '{"type": "input", "x": 1}', NULL, 'pending', 'bench',
         (extract(epoch FROM now()) * 1000)::bigint, 0, s.last_seq FROM s
  ON CONFLICT (id) DO NOTHING;
-- The wake-up the plugin sends after a stored command (its own, non-durable transaction).
-- (pgbench reads a colon followed by a name as a variable, even inside quotes: hence ':'.)
SELECT set_config('synchronous_commit', 'off', true), pg_notify('deskstream' || ':' || 'bench', 'bench-desk-' || :client_id::text);
UPDATE desktop_commands d SET status = 'delivered', delivered_at = n.now_ms, claimed_until = n.now_ms + 60000,
    attempts = d.attempts + 1
  FROM (SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms) n,
       (SELECT id FROM desktop_commands WHERE desktop_client_id = 'bench-desk-' || :client_id::text
          AND (status = 'pending' OR (status = 'delivered' AND claimed_until < (extract(epoch FROM now()) * 1000)::bigint))
          ORDER BY seq, id LIMIT 1 FOR UPDATE SKIP LOCKED) s
  WHERE d.id = s.id
  RETURNING d.id, d.desktop_client_id, d.command_type, d.command_data, d.target_instance_id, d.status, d.result,
    d.origin, d.created_at, d.delivered_at, d.completed_at, d.claimed_until, d.attempts, d.seq;
