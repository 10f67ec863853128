DROP TABLE IF EXISTS result_tombstones;
DROP TABLE IF EXISTS results;
