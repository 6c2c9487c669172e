CREATE TABLE "cluster_holds" (
	"cluster" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"reason" text NOT NULL,
	"digest" text,
	"since" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notifications" (
	"id" serial PRIMARY KEY NOT NULL,
	"receiver" text NOT NULL,
	"key" text NOT NULL,
	"event" jsonb NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "pauses" (
	"scope" text PRIMARY KEY NOT NULL,
	"reason" text,
	"actor" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "prune_approvals" (
	"cluster" text NOT NULL,
	"digest" text NOT NULL,
	"actor" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "prune_approvals_cluster_digest_pk" PRIMARY KEY("cluster","digest")
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"environment" text PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"commit" text NOT NULL,
	"wave" integer NOT NULL,
	"wave_at" timestamp with time zone NOT NULL,
	"released" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"halted" jsonb,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "cluster_status" ADD COLUMN "pending_reason" text;--> statement-breakpoint
ALTER TABLE "cluster_status" ADD COLUMN "pending_until" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "notifications_receiver_key" ON "notifications" USING btree ("receiver","key");--> statement-breakpoint
CREATE INDEX "notifications_due" ON "notifications" USING btree ("state","next_at");