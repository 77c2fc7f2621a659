-- Number kept for a migration of another area; empty here so that the
-- numbers that follow apply. Replaced by that area's migration on merge.
SELECT 1;
