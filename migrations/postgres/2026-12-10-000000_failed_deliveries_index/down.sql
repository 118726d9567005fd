DROP INDEX event_deliveries_failed;
