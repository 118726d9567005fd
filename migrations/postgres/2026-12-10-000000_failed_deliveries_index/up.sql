-- /metrics and /healthz/details count the deliveries given up (pending ones have partial indexes already).
CREATE INDEX event_deliveries_failed ON event_deliveries (endpoint_id) WHERE status = 'failed';
