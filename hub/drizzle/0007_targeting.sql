CREATE TABLE "chart_pins" (
	"ref" text PRIMARY KEY NOT NULL,
	"digest" text NOT NULL,
	"pinned_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "bundles" ADD COLUMN "sources" jsonb;