-- No login of this database needs temporary tables, views or functions, and
-- a temporary object can shadow a table in a function that forgets pg_temp
-- in its search_path (migration 000090's functions list it last). Take the
-- right away from every role that is not the owner or a superuser.
DO $$ BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$;
