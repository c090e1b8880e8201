CREATE TABLE `job_state` (
	`name` varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`fence` bigint unsigned NOT NULL DEFAULT 0,
	`position` bigint unsigned NOT NULL DEFAULT 0,
	CONSTRAINT `job_state_name` PRIMARY KEY(`name`)
);
--> statement-breakpoint
ALTER TABLE `chats` ADD `collision_version` bigint unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `messages` ADD `collision_version` bigint unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `messages` ADD `unindexed_version` bigint unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `messages` ADD `persisted_at` datetime(3) DEFAULT CURRENT_TIMESTAMP(3) NOT NULL;--> statement-breakpoint
CREATE INDEX `messages_unindexed` ON `messages` (`unindexed_version`);--> statement-breakpoint
CREATE INDEX `messages_persisted_at` ON `messages` (`persisted_at`);