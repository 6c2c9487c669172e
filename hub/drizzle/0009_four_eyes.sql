CREATE TABLE "promotion_requests" (
	"id" serial PRIMARY KEY NOT NULL,
	"from_env" text NOT NULL,
	"to_env" text NOT NULL,
	"revision" text NOT NULL,
	"requested_by" text NOT NULL,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"promotion_id" integer
);
--> statement-breakpoint
ALTER TABLE "promotions" ADD COLUMN "approved_by" text;--> statement-breakpoint
CREATE UNIQUE INDEX "promotion_requests_pending" ON "promotion_requests" USING btree ("from_env","to_env") WHERE state = 'pending';