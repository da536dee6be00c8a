BEGIN TRANSACTION;
CREATE TABLE actions (
	id INTEGER NOT NULL, 
	task_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	seq INTEGER NOT NULL, 
	main TEXT NOT NULL, 
	condition JSON NOT NULL, 
	env VARCHAR(1024), 
	input_data JSON NOT NULL, 
	to_action VARCHAR(255), 
	parent VARCHAR(255), 
	kind VARCHAR(16) NOT NULL, 
	timeout FLOAT, 
	retries INTEGER NOT NULL, 
	retry_delay FLOAT NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(16), 
	attempt INTEGER NOT NULL, 
	attempt_id VARCHAR(36), 
	node_id VARCHAR(36), 
	dispatched_at DATETIME, 
	retry_at DATETIME, 
	start_at DATETIME, 
	end_at DATETIME, 
	returncode INTEGER, 
	output JSON, 
	message TEXT, env_sha1 VARCHAR(40), target JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_actions_task_name UNIQUE (task_id, name), 
	FOREIGN KEY(task_id) REFERENCES tasks (task_id) ON DELETE CASCADE
);
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0009');
CREATE TABLE app_histories (
	id INTEGER NOT NULL, 
	application_id VARCHAR(36) NOT NULL, 
	sha1 VARCHAR(40) NOT NULL, 
	description TEXT NOT NULL, 
	create_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_app_histories_sha1 UNIQUE (application_id, sha1)
);
CREATE TABLE applications (
	id INTEGER NOT NULL, 
	application_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	sha1 VARCHAR(40) NOT NULL, 
	create_at DATETIME NOT NULL, 
	update_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE attempts (
	id INTEGER NOT NULL, 
	attempt_id VARCHAR(36) NOT NULL, 
	task_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	attempt INTEGER NOT NULL, 
	node_id VARCHAR(36), 
	dispatched_at DATETIME NOT NULL, 
	start_at DATETIME, 
	end_at DATETIME, 
	status VARCHAR(16), 
	returncode INTEGER, 
	message TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (attempt_id), 
	FOREIGN KEY(task_id) REFERENCES tasks (task_id) ON DELETE CASCADE
);
CREATE TABLE blobs (
	sha1 VARCHAR(40) NOT NULL, 
	seq INTEGER NOT NULL, 
	data BLOB NOT NULL, 
	PRIMARY KEY (sha1, seq)
);
CREATE TABLE idempotency_keys (
	"key" VARCHAR(255) NOT NULL, 
	task_id VARCHAR(36) NOT NULL, 
	application_id VARCHAR(36) NOT NULL, 
	create_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE leadership (
	id INTEGER NOT NULL, 
	epoch BIGINT NOT NULL, 
	manager_id VARCHAR(36), 
	leader TEXT, 
	expires_at DATETIME NOT NULL, 
	acquired_at DATETIME, 
	PRIMARY KEY (id)
);
INSERT INTO "leadership" VALUES(1,0,NULL,NULL,'1970-01-01 00:00:00.000000',NULL);
CREATE TABLE schedule_fires (
	id INTEGER NOT NULL, 
	schedule_id VARCHAR(36) NOT NULL, 
	fire_at DATETIME NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	target_id VARCHAR(36), 
	outcome VARCHAR(16) NOT NULL, 
	create_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_schedule_fires_instant UNIQUE (schedule_id, fire_at)
);
CREATE TABLE schedules (
	id INTEGER NOT NULL, 
	schedule_id VARCHAR(36) NOT NULL, 
	schedule_name VARCHAR(255) NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	source_id VARCHAR(36) NOT NULL, 
	input_data JSON NOT NULL, 
	enable BOOLEAN NOT NULL, 
	cron VARCHAR(255) NOT NULL, 
	minute INTEGER NOT NULL, 
	hour INTEGER NOT NULL, 
	day_of_month INTEGER NOT NULL, 
	day_of_week INTEGER NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	catchup VARCHAR(16) NOT NULL, 
	overlap VARCHAR(16) NOT NULL, 
	anchor_at DATETIME NOT NULL, 
	last_fire_at DATETIME, 
	last_target_id VARCHAR(36), 
	create_at DATETIME NOT NULL, 
	update_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE services (
	id INTEGER NOT NULL, 
	service_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	application_id VARCHAR(36) NOT NULL, 
	description TEXT NOT NULL, 
	input_data JSON NOT NULL, 
	signal INTEGER NOT NULL, 
	enable BOOLEAN NOT NULL, 
	restart VARCHAR(16) NOT NULL, 
	task_id VARCHAR(36), 
	started_at DATETIME, 
	restarts INTEGER NOT NULL, 
	streak INTEGER NOT NULL, 
	last_exit VARCHAR(16), 
	next_start_at DATETIME, 
	create_at DATETIME NOT NULL, 
	update_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE task_counts (
	application_id VARCHAR(36) NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	n INTEGER NOT NULL, 
	PRIMARY KEY (application_id, stage, status)
);
CREATE TABLE tasks (
	id INTEGER NOT NULL, 
	task_id VARCHAR(36) NOT NULL, 
	task_name VARCHAR(255) NOT NULL, 
	application_id VARCHAR(36) NOT NULL, 
	app_sha1 VARCHAR(40) NOT NULL, 
	input_data JSON NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(16), 
	signal INTEGER, 
	message TEXT, 
	on_success VARCHAR(255), 
	on_fail VARCHAR(255), 
	create_at DATETIME NOT NULL, 
	start_at DATETIME, 
	update_at DATETIME NOT NULL, 
	end_at DATETIME, work_id VARCHAR(36), 
	PRIMARY KEY (id)
);
CREATE TABLE venv_histories (
	id INTEGER NOT NULL, 
	venv_id VARCHAR(36) NOT NULL, 
	sha1 VARCHAR(40) NOT NULL, 
	description TEXT NOT NULL, 
	create_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_venv_histories_sha1 UNIQUE (venv_id, sha1)
);
CREATE TABLE venvs (
	id INTEGER NOT NULL, 
	venv_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	sha1 VARCHAR(40) NOT NULL, 
	create_at DATETIME NOT NULL, 
	update_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE workflows (
	id INTEGER NOT NULL, 
	workflow_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	description TEXT NOT NULL, 
	enable BOOLEAN NOT NULL, 
	configuration JSON NOT NULL, 
	create_at DATETIME NOT NULL, 
	update_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE works (
	id INTEGER NOT NULL, 
	work_id VARCHAR(36) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	workflow_id VARCHAR(36) NOT NULL, 
	configuration JSON NOT NULL, 
	pinned JSON NOT NULL, 
	input_data JSON NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(16), 
	signal INTEGER, 
	message TEXT, 
	entries JSON NOT NULL, 
	event_task_id VARCHAR(36), 
	create_at DATETIME NOT NULL, 
	start_at DATETIME, 
	update_at DATETIME NOT NULL, 
	end_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_applications_application_id ON applications (application_id);
CREATE UNIQUE INDEX ix_tasks_task_id ON tasks (task_id);
CREATE INDEX ix_tasks_stage_id ON tasks (stage, id);
CREATE INDEX ix_actions_task_id ON actions (task_id);
CREATE INDEX ix_attempts_task_id ON attempts (task_id);
CREATE UNIQUE INDEX ix_schedules_schedule_id ON schedules (schedule_id);
CREATE INDEX ix_schedules_source_id ON schedules (source_id);
CREATE INDEX ix_schedule_fires_schedule_id ON schedule_fires (schedule_id);
CREATE UNIQUE INDEX ix_services_service_id ON services (service_id);
CREATE INDEX ix_services_application_id ON services (application_id);
CREATE UNIQUE INDEX ix_workflows_workflow_id ON workflows (workflow_id);
CREATE UNIQUE INDEX ix_works_work_id ON works (work_id);
CREATE INDEX ix_works_workflow_id ON works (workflow_id);
CREATE INDEX ix_works_stage_id ON works (stage, id);
CREATE INDEX ix_app_histories_application_id ON app_histories (application_id);
CREATE UNIQUE INDEX ix_venvs_venv_id ON venvs (venv_id);
CREATE INDEX ix_venv_histories_venv_id ON venv_histories (venv_id);
CREATE INDEX ix_idempotency_keys_create_at ON idempotency_keys (create_at);
CREATE INDEX ix_tasks_application_id_id ON tasks (application_id, id);
CREATE INDEX ix_tasks_work_id_id ON tasks (work_id, id);
CREATE INDEX ix_tasks_status_id ON tasks (status, id);
CREATE INDEX ix_tasks_stage_end_at ON tasks (stage, end_at, id);
CREATE TRIGGER tasks_counted_insert AFTER INSERT ON tasks BEGIN
         INSERT INTO task_counts (application_id, stage, status, n)
           VALUES (new.application_id, new.stage, coalesce(new.status, ''), 1)
           ON CONFLICT (application_id, stage, status) DO UPDATE SET n = n + 1;
       END;
CREATE TRIGGER tasks_counted_delete AFTER DELETE ON tasks BEGIN
         UPDATE task_counts SET n = n - 1 WHERE application_id = old.application_id AND stage = old.stage
           AND status = coalesce(old.status, '');
       END;
CREATE TRIGGER tasks_counted_update AFTER UPDATE OF application_id, stage, status ON tasks
       WHEN old.application_id IS NOT new.application_id OR old.stage IS NOT new.stage
            OR old.status IS NOT new.status BEGIN
         UPDATE task_counts SET n = n - 1 WHERE application_id = old.application_id AND stage = old.stage
           AND status = coalesce(old.status, '');
         INSERT INTO task_counts (application_id, stage, status, n)
           VALUES (new.application_id, new.stage, coalesce(new.status, ''), 1)
           ON CONFLICT (application_id, stage, status) DO UPDATE SET n = n + 1;
       END;
COMMIT;
