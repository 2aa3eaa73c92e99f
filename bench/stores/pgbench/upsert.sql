-- The PostgreSQL store's register_client statement (plugins/stores/postgres/postgres_store.cpp).
\set i random(0, 999)
INSERT INTO active_desktop_clients (client_id, name, hostname, instance_id, monitors, capabilities, connected_at, last_ping)
  VALUES ('bench-' || :client_id::text || '-' || :i::text, 'bench', 'bench-host', 'relay-bench',
          '[{"index": 0, "width": 1920, "height": 1080}]', '{"input": true}', :i::bigint, :i::bigint)
  ON CONFLICT (client_id) DO UPDATE SET name = EXCLUDED.name, hostname = EXCLUDED.hostname,
    instance_id = EXCLUDED.instance_id, monitors = EXCLUDED.monitors, capabilities = EXCLUDED.capabilities,
    connected_at = EXCLUDED.connected_at, last_ping = EXCLUDED.last_ping;
