DROP TABLE webhook_signed_queries;
