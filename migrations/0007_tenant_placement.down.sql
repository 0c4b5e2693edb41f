DROP TABLE IF EXISTS tenant_placement_events;
DROP TABLE IF EXISTS tenant_placements;
