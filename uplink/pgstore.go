package uplink

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// PGTable is the table PGStore keeps reads in.
const PGTable = "alpr_reads"

// pgSchema creates the table if missing. One row per read ID; lat and lon
// are NULL for a read without a fix; payload is the read as received.
const pgSchema = `
CREATE TABLE IF NOT EXISTS ` + PGTable + ` (
	id          uuid PRIMARY KEY,
	device      text NOT NULL,
	camera      text NOT NULL,
	plate       text NOT NULL,
	confidence  double precision NOT NULL,
	time        timestamptz NOT NULL,
	time_source text NOT NULL,
	lat         double precision,
	lon         double precision,
	payload     jsonb NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ` + PGTable + `_plate_time ON ` + PGTable + ` (plate, time);
`

// pgSchemaLock is the advisory lock key taken while creating the schema:
// CREATE TABLE IF NOT EXISTS is not safe against a concurrent one (both
// may try to insert the type's catalog row), and the receivers of a share
// group start together.
const pgSchemaLock = 0x616c7072 // "alpr"

// pgColumns are the columns one read fills, in insert order.
const pgColumns = 10

// pgRowsPerInsert keeps one INSERT under PostgreSQL's limit of 65535
// parameters.
const pgRowsPerInsert = 1000

// PGStore is a Store in a PostgreSQL table (PGTable): each batch is one
// transaction of INSERT ... ON CONFLICT (id) DO NOTHING, and Save returns
// only after the COMMIT. Several receivers may share one database: the
// primary key keeps each read once whichever receiver stores it.
type PGStore struct {
	db   *sql.DB
	name string // host:port/dbname, for messages: the DSN may hold a password
}

// OpenPGStore connects to the database of dsn (a lib/pq DSN: URL or
// key=value pairs), checks it answers within ctx and creates the table if
// missing. A bad DSN wraps ErrInvalidConfig.
func OpenPGStore(ctx context.Context, dsn string) (*PGStore, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: bad DSN: %w: %w", ErrInvalidConfig, redactDSNError(err, dsn))
	}
	name := pgName(cfg)
	conn, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w: %w", name, ErrInvalidConfig, err)
	}
	db := sql.OpenDB(conn)
	// The receiver stores one batch at a time; a spare connection lets a
	// broken one be replaced without waiting.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &PGStore{db: db, name: name}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store %s: connect: %w", name, err)
	}
	if err := s.createSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// pgName is host:port/dbname (or socket-dir:port/dbname) of cfg.
func pgName(cfg pq.Config) string {
	db := cfg.Database
	if db == "" {
		db = cfg.User
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + db
}

// redactDSNError keeps a DSN that may hold a password out of err's message.
func redactDSNError(err error, dsn string) error {
	if dsn == "" || !strings.Contains(err.Error(), dsn) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), dsn, "<dsn>"))
}

func (s *PGStore) createSchema(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create table %s in %s: begin: %w", PGTable, s.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgSchemaLock)); err != nil {
		return fmt.Errorf("create table %s in %s: lock: %w", PGTable, s.name, err)
	}
	if _, err := tx.ExecContext(ctx, pgSchema); err != nil {
		return fmt.Errorf("create table %s in %s: %w", PGTable, s.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create table %s in %s: commit: %w", PGTable, s.name, err)
	}
	return nil
}

// Save inserts batch in one transaction and returns after its COMMIT. A
// read's ID is stored in the canonical UUID form; the receipt (made by the
// receiver) carries the ID as the device sent it.
//
// The payload column holds the read as received. If PostgreSQL refuses a
// batch as data (SQLSTATE class 22: say an unknown field holds a number
// jsonb cannot represent, which Go's decoder skipped), the batch is stored
// again with each payload re-encoded from the parsed read, which PostgreSQL
// always takes: one hostile payload must not block every batch it lands in.
func (s *PGStore) Save(ctx context.Context, batch []Received) ([]bool, error) {
	if len(batch) == 0 {
		return []bool{}, nil
	}
	canon := make([]string, len(batch))
	for i, p := range batch {
		id, err := uuid.Parse(p.Read.ID)
		if err != nil {
			// Validate accepted it, so this is a caller's bug.
			return nil, fmt.Errorf("save reads to %s: id %q: %w", s.name, p.Read.ID, ErrInvalidRead)
		}
		canon[i] = id.String()
	}
	isNew, err := s.save(ctx, batch, canon, false)
	if pqErr, ok := errors.AsType[*pq.Error](err); ok && pqErr.Code.Class() == "22" {
		isNew, err = s.save(ctx, batch, canon, true)
	}
	return isNew, err
}

func (s *PGStore) save(ctx context.Context, batch []Received, canon []string, reencode bool) ([]bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("save reads to %s: begin: %w", s.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	inserted := make(map[string]struct{}, len(batch))
	for lo := 0; lo < len(batch); lo += pgRowsPerInsert {
		hi := min(lo+pgRowsPerInsert, len(batch))
		if err := s.insert(ctx, tx, batch[lo:hi], canon[lo:hi], reencode, inserted); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("save reads to %s: commit: %w", s.name, err)
	}
	isNew := make([]bool, len(batch))
	for i, id := range canon {
		if _, ok := inserted[id]; ok {
			isNew[i] = true
			delete(inserted, id) // a second copy in batch is not new
		}
	}
	return isNew, nil
}

// insert runs one multi-row INSERT and adds the IDs it inserted (RETURNING
// leaves out the conflicting ones) to inserted.
func (s *PGStore) insert(ctx context.Context, tx *sql.Tx, batch []Received, canon []string, reencode bool, inserted map[string]struct{}) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO ` + PGTable + ` (id, device, camera, plate, confidence, time, time_source, lat, lon, payload) VALUES `)
	args := make([]any, 0, len(batch)*pgColumns)
	for i, p := range batch {
		if i > 0 {
			q.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d::uuid,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d::jsonb)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10)
		var lat, lon sql.NullFloat64
		if pos := p.Read.Position; pos != nil {
			lat = sql.NullFloat64{Float64: pos.Lat, Valid: true}
			lon = sql.NullFloat64{Float64: pos.Lon, Valid: true}
		}
		payload := p.Raw
		if reencode {
			b, err := json.Marshal(p.Read)
			if err != nil {
				return fmt.Errorf("save reads to %s: encode read %s: %w", s.name, p.Read.ID, err)
			}
			payload = b
		}
		r := p.Read
		args = append(args, canon[i], r.Device, r.Camera, r.Plate, r.Confidence,
			r.Time.UTC(), r.TimeSource, lat, lon, string(payload))
	}
	q.WriteString(` ON CONFLICT (id) DO NOTHING RETURNING id`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return fmt.Errorf("save reads to %s: insert: %w", s.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("save reads to %s: scan id: %w", s.name, err)
		}
		inserted[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("save reads to %s: insert: %w", s.name, err)
	}
	return nil
}

// Close closes the database handle. It is idempotent.
func (s *PGStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close postgres store %s: %w", s.name, err)
	}
	return nil
}
