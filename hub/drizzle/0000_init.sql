CREATE TABLE "agent_credentials" (
	"id" serial PRIMARY KEY NOT NULL,
	"credential_hash" text NOT NULL,
	"cluster" text NOT NULL,
	"agent_public_key" "bytea" NOT NULL,
	"nats_user" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "agent_credentials_credential_hash_unique" UNIQUE("credential_hash")
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" serial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"action" text NOT NULL,
	"actor" text NOT NULL,
	"cluster" text,
	"outcome" text NOT NULL,
	"detail" text
);
--> statement-breakpoint
CREATE TABLE "bootstrap_tokens" (
	"id" serial PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"cluster" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "bootstrap_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "bundles" (
	"id" serial PRIMARY KEY NOT NULL,
	"cluster" text NOT NULL,
	"generation" integer NOT NULL,
	"content_digest" text NOT NULL,
	"revision" text NOT NULL,
	"envelope" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "cluster_status" (
	"cluster" text PRIMARY KEY NOT NULL,
	"applied_generation" integer,
	"revision" text,
	"bundle_digest" text,
	"phase" text,
	"health" text,
	"apply_error" text,
	"pending_generation" integer,
	"refusal" text,
	"refused_generation" integer,
	"refused_at" timestamp with time zone,
	"reported_at" timestamp with time zone,
	"reported_via" text,
	"last_seen" timestamp with time zone,
	"last_seq" bigint
);
--> statement-breakpoint
CREATE TABLE "clusters" (
	"name" text PRIMARY KEY NOT NULL,
	"environment" text NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "drift" (
	"id" serial PRIMARY KEY NOT NULL,
	"cluster" text NOT NULL,
	"group" text NOT NULL,
	"version" text NOT NULL,
	"kind" text NOT NULL,
	"namespace" text NOT NULL,
	"name" text NOT NULL,
	"field" text NOT NULL,
	"desired" text NOT NULL,
	"live" text NOT NULL,
	"since" timestamp with time zone NOT NULL,
	"cleared_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "pending_syncs" (
	"cluster" text PRIMARY KEY NOT NULL,
	"generation" integer NOT NULL,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "promotions" (
	"id" serial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"who" text NOT NULL,
	"from_env" text NOT NULL,
	"to_env" text NOT NULL,
	"from_revision" text NOT NULL,
	"commit" text NOT NULL,
	"kind" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "render_state" (
	"scope" text PRIMARY KEY NOT NULL,
	"last_good_revision" text,
	"last_error" text,
	"error_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "resource_status" (
	"cluster" text NOT NULL,
	"group" text NOT NULL,
	"version" text NOT NULL,
	"kind" text NOT NULL,
	"namespace" text NOT NULL,
	"name" text NOT NULL,
	"sync" text NOT NULL,
	"health" text NOT NULL,
	"health_reason" text,
	"error" text,
	CONSTRAINT "resource_status_cluster_group_kind_namespace_name_pk" PRIMARY KEY("cluster","group","kind","namespace","name")
);
--> statement-breakpoint
CREATE TABLE "status_reports" (
	"id" serial PRIMARY KEY NOT NULL,
	"cluster" text NOT NULL,
	"seq" bigint NOT NULL,
	"kind" text NOT NULL,
	"observed_at" timestamp with time zone,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"via" text NOT NULL,
	"body" jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX "agent_credentials_cluster" ON "agent_credentials" USING btree ("cluster");--> statement-breakpoint
CREATE UNIQUE INDEX "bundles_cluster_generation" ON "bundles" USING btree ("cluster","generation");--> statement-breakpoint
CREATE INDEX "drift_cluster_open" ON "drift" USING btree ("cluster","cleared_at");--> statement-breakpoint
CREATE UNIQUE INDEX "status_reports_cluster_seq" ON "status_reports" USING btree ("cluster","seq");