DROP TABLE IF EXISTS integration_samples;
