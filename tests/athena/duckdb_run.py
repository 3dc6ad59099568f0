"""Runs the Athena attribution query on DuckDB over CloudTrail records (tests/athena_duckdb.rs).

argv: RECORDS.json (a list of CloudTrail records) SQL.sql TABLE. Builds TABLE shaped like AWS's documented
CloudTrail table in Athena (useridentity a struct, requestparameters/responseelements JSON text, the
`timestamp` partition as yyyy/MM/dd), runs the query, and prints its rows as JSON: a list of objects, every
value a string or null, as Athena's GetQueryResults gives them.
"""
import json
import sys

import duckdb

records_path, sql_path, table = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
if "." in table:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
con.execute("CREATE TABLE raw (r JSON)")
with open(records_path) as f:
    records = json.load(f)
con.executemany("INSERT INTO raw VALUES (?)", [[json.dumps(r, separators=(",", ":"))] for r in records])
con.execute(
    f"""
    CREATE TABLE {table} AS SELECT
      r->>'eventVersion' AS eventversion,
      struct_pack(
        type := r->'userIdentity'->>'type',
        principalid := r->'userIdentity'->>'principalId',
        arn := r->'userIdentity'->>'arn',
        accountid := r->'userIdentity'->>'accountId',
        invokedby := r->'userIdentity'->>'invokedBy',
        accesskeyid := r->'userIdentity'->>'accessKeyId',
        username := r->'userIdentity'->>'userName',
        sessioncontext := struct_pack(
          sessionissuer := struct_pack(
            type := r->'userIdentity'->'sessionContext'->'sessionIssuer'->>'type',
            principalid := r->'userIdentity'->'sessionContext'->'sessionIssuer'->>'principalId',
            arn := r->'userIdentity'->'sessionContext'->'sessionIssuer'->>'arn',
            accountid := r->'userIdentity'->'sessionContext'->'sessionIssuer'->>'accountId',
            username := r->'userIdentity'->'sessionContext'->'sessionIssuer'->>'userName'
          )
        )
      ) AS useridentity,
      r->>'eventTime' AS eventtime,
      r->>'eventSource' AS eventsource,
      r->>'eventName' AS eventname,
      r->>'awsRegion' AS awsregion,
      r->>'sourceIPAddress' AS sourceipaddress,
      r->>'userAgent' AS useragent,
      r->>'errorCode' AS errorcode,
      r->>'errorMessage' AS errormessage,
      CAST(r->'requestParameters' AS VARCHAR) AS requestparameters,
      CAST(r->'responseElements' AS VARCHAR) AS responseelements,
      r->>'recipientAccountId' AS recipientaccountid,
      r->>'awsRegion' AS region,
      strftime(CAST(r->>'eventTime' AS TIMESTAMP), '%Y/%m/%d') AS "timestamp"
    FROM raw
    """
)
with open(sql_path) as f:
    cursor = con.execute(f.read())
columns = [d[0] for d in cursor.description]


def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


print(json.dumps([{c: text(v) for c, v in zip(columns, row)} for row in cursor.fetchall()]))
