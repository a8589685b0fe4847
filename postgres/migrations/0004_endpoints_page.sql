-- The endpoint list pages by (created_at, id) within a project.
CREATE INDEX endpoints_project_page ON endpoints (project_id, created_at, id);
DROP INDEX endpoints_project;
