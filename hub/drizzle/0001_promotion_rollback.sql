ALTER TABLE "cluster_status" ADD COLUMN "healthy_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "promotions" ADD COLUMN "fast_forward" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "promotions" ADD COLUMN "previous_head" text;--> statement-breakpoint
ALTER TABLE "promotions" ADD COLUMN "undoes" integer;