DROP TRIGGER IF EXISTS results_withdrawn_in_intake ON results;
DROP FUNCTION IF EXISTS results_withdrawn_in_intake();
