DROP TABLE messages;
DROP TABLE subscribe_permissions;
DROP TABLE message_templates;
