CREATE TABLE `applications` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`token` char(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci NOT NULL,
	`chats_count` int unsigned NOT NULL DEFAULT 0,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `applications_id` PRIMARY KEY(`id`),
	CONSTRAINT `applications_token_unique` UNIQUE(`token`)
);
--> statement-breakpoint
CREATE TABLE `chats` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`application_id` bigint unsigned NOT NULL,
	`number` int unsigned NOT NULL,
	`title` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci,
	`title_version` bigint unsigned NOT NULL DEFAULT 0,
	`messages_count` int unsigned NOT NULL DEFAULT 0,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `chats_id` PRIMARY KEY(`id`),
	CONSTRAINT `chats_application_number_unique` UNIQUE(`application_id`,`number`)
);
--> statement-breakpoint
CREATE TABLE `messages` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`chat_id` bigint unsigned NOT NULL,
	`number` int unsigned NOT NULL,
	`body` text CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci NOT NULL,
	`body_version` bigint unsigned NOT NULL DEFAULT 0,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `messages_id` PRIMARY KEY(`id`),
	CONSTRAINT `messages_chat_number_unique` UNIQUE(`chat_id`,`number`)
);
