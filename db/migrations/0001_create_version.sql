ALTER TABLE `chats` ADD `create_version` bigint unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `messages` ADD `create_version` bigint unsigned DEFAULT 0 NOT NULL;