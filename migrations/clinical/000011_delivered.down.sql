DROP TABLE delivered;
