-- Spanner DDL for occurrence-pipeline (the logical model of the product's docs, "What is written").
--
-- Conventions:
--   * No key increases with time: group ids are hashes of (project, primary hash, generation), occurrence,
--     event and activity ids are UUIDs or hashes, hashes are MD5 hex.
--   * Occurrences, Activities and GroupEnvironments are interleaved in Groups, so a group and everything that
--     hangs off it live together and go together (ON DELETE CASCADE).
--   * Seq is the key state's version: it increases with every application of the group engine to the key.
--     Writers never replace a row carrying a higher Seq (a group row never goes backwards).
--   * pipeline.admin applies the statements (separated by ';') whose table or index does not exist yet, so
--     appending a statement is how the schema evolves.
--   * GROUPS and HASH are reserved words of Spanner's GoogleSQL: the Groups table and the GroupHashes.Hash column
--     are written `quoted` in DDL and SQL (the read and mutation APIs take the plain names).

CREATE TABLE Organizations (
  OrganizationId INT64 NOT NULL,
  Slug STRING(100) NOT NULL,
  CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (OrganizationId);

CREATE UNIQUE INDEX OrganizationsBySlug ON Organizations (Slug);

-- Features are given per project and belong to its organization (the union over the organization's projects).
CREATE TABLE Projects (
  ProjectId INT64 NOT NULL,
  OrganizationId INT64 NOT NULL,
  Slug STRING(100) NOT NULL,
  Features ARRAY<STRING(200)> NOT NULL,
  CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (ProjectId);

CREATE UNIQUE INDEX ProjectsByOrganizationSlug ON Projects (OrganizationId, Slug);

-- One row per key (project, primary hash) the pipeline has seen. While the key has no group, State holds the
-- group engine's encoded key state; once a group exists, GroupId points at it and the state lives on the group
-- row (so an ordinary update writes one row, not two). A delete moves the state back here (its duplicate
-- memory) with the next Generation.
CREATE TABLE KeyStates (
  ProjectId INT64 NOT NULL,
  PrimaryHash STRING(32) NOT NULL,
  Generation INT64 NOT NULL,
  Seq INT64 NOT NULL,
  GroupId INT64,
  State BYTES(MAX),
  UpdatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (ProjectId, PrimaryHash);

CREATE TABLE `Groups` (
  GroupId INT64 NOT NULL,
  ProjectId INT64 NOT NULL,
  OrganizationId INT64 NOT NULL,
  PrimaryHash STRING(32) NOT NULL,
  Fingerprint STRING(MAX) NOT NULL,
  Generation INT64 NOT NULL,
  Type INT64 NOT NULL,
  Category INT64 NOT NULL,
  Status INT64 NOT NULL,
  Substatus INT64,
  Priority INT64,
  Level INT64 NOT NULL,
  Title STRING(MAX) NOT NULL,
  Subtitle STRING(MAX) NOT NULL,
  Culprit STRING(200) NOT NULL,
  Message STRING(MAX) NOT NULL,
  Platform STRING(MAX),
  FirstSeen TIMESTAMP NOT NULL,
  LastSeen TIMESTAMP NOT NULL,
  ActiveAt TIMESTAMP NOT NULL,
  ResolvedAt TIMESTAMP,
  TimesSeen INT64 NOT NULL,
  FirstRelease STRING(MAX),
  Assignee STRING(MAX),
  ResolutionType STRING(20),
  ResolutionVersion STRING(MAX),
  Data JSON,
  Seq INT64 NOT NULL,
  State BYTES(MAX),
  UpdatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (GroupId);

-- Every attached occurrence, with its full payload.
CREATE TABLE Occurrences (
  GroupId INT64 NOT NULL,
  OccurrenceId STRING(32) NOT NULL,
  ProjectId INT64 NOT NULL,
  EventId STRING(32) NOT NULL,
  MessageId STRING(MAX) NOT NULL,
  MessageTime TIMESTAMP NOT NULL,
  Fingerprint ARRAY<STRING(MAX)> NOT NULL,
  Hashes ARRAY<STRING(32)> NOT NULL,
  Type INT64 NOT NULL,
  IssueTitle STRING(MAX) NOT NULL,
  Subtitle STRING(MAX) NOT NULL,
  Culprit STRING(200) NOT NULL,
  Level STRING(10) NOT NULL,
  DetectionTime TIMESTAMP NOT NULL,
  EventTime TIMESTAMP NOT NULL,
  ResourceId STRING(MAX),
  EvidenceData JSON,
  EvidenceDisplay JSON,
  Priority INT64,
  Assignee STRING(MAX),
  Release STRING(MAX),
  Environment STRING(MAX),
) PRIMARY KEY (GroupId, OccurrenceId),
  INTERLEAVE IN PARENT `Groups` ON DELETE CASCADE;

-- Ids are derived from the message that caused the activity, so replays rewrite the same rows.
CREATE TABLE Activities (
  GroupId INT64 NOT NULL,
  ActivityId STRING(32) NOT NULL,
  ProjectId INT64 NOT NULL,
  Type INT64 NOT NULL,
  MessageId STRING(MAX) NOT NULL,
  ActivityTime TIMESTAMP NOT NULL,
  Data JSON,
) PRIMARY KEY (GroupId, ActivityId),
  INTERLEAVE IN PARENT `Groups` ON DELETE CASCADE;

CREATE TABLE GroupEnvironments (
  GroupId INT64 NOT NULL,
  Environment STRING(MAX) NOT NULL,
  FirstRelease STRING(MAX),
  FirstSeen TIMESTAMP NOT NULL,
) PRIMARY KEY (GroupId, Environment),
  INTERLEAVE IN PARENT `Groups` ON DELETE CASCADE;

-- (project, fingerprint hash) -> group, for every fingerprint part of attached occurrences (the primary always).
CREATE TABLE GroupHashes (
  ProjectId INT64 NOT NULL,
  `Hash` STRING(32) NOT NULL,
  GroupId INT64 NOT NULL,
) PRIMARY KEY (ProjectId, `Hash`);

CREATE INDEX GroupHashesByGroup ON GroupHashes (GroupId);

-- Events stored by the event path whose occurrence was not attached to a group (noise gate, quota, category
-- mismatch: E7 stores them anyway); attached occurrences keep their event in Occurrences.EventPayload.
CREATE TABLE Events (
  ProjectId INT64 NOT NULL,
  EventId STRING(32) NOT NULL,
  Platform STRING(MAX) NOT NULL,
  EventTime TIMESTAMP NOT NULL,
  Received TIMESTAMP,
  Level STRING(10) NOT NULL,
  Release STRING(MAX),
  Environment STRING(MAX),
  Payload JSON NOT NULL,
) PRIMARY KEY (ProjectId, EventId);

-- A release's first-seen time in its project: the smallest message time of any message that named it.
CREATE TABLE Releases (
  ProjectId INT64 NOT NULL,
  Version STRING(MAX) NOT NULL,
  FirstSeen TIMESTAMP NOT NULL,
) PRIMARY KEY (ProjectId, Version);

-- Issue index API tokens (Sentry user auth token shape: 'sntryu_' + 64 hex). Only the SHA-256 of the token is
-- stored; each token is bound to one organization and one scope ('read' or 'write'; write implies read).
CREATE TABLE ApiTokens (
  TokenHash STRING(64) NOT NULL,
  OrganizationId INT64 NOT NULL,
  Scope STRING(10) NOT NULL,
  Name STRING(MAX),
  CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (TokenHash);

-- ---------------------------------------------------------------------------------------------------------------
-- The issue index (api/, docs/issue-index.md). Every list query is a set of key-range reads on one of the six
-- indexes below, bounded by (organization or project, status, priority) and read in index order with a row limit,
-- so a page costs O(page) index rows whatever the size of the organization. The key is
--   (scope, Status, Priority DESC, <sort column> DESC, GroupId DESC)
-- so that one range per (status, priority) pair is already in the page's order (newest, most frequent... first),
-- Priority in the key serves both the priority filter of the default query and the priority sort, and GroupId
-- breaks ties so keyset cursors are exact. STORING holds every column the filters test, so a page is filtered
-- without touching the base table; the wide display columns (Title, Culprit, Data) are read for the page's rows
-- only, by primary key, in one batched read. NULL_FILTERED is not used: it would hide groups without a priority.

-- sort=date (LastSeen) and sort=priority (Priority, LastSeen), organization-wide.
CREATE INDEX GroupsByOrganizationLastSeen ON `Groups` (OrganizationId, Status, Priority DESC, LastSeen DESC, GroupId DESC)
  STORING (ProjectId, Substatus, Type, Category, Level, FirstSeen, TimesSeen, FirstRelease, Assignee);

-- sort=new (FirstSeen), organization-wide.
CREATE INDEX GroupsByOrganizationFirstSeen ON `Groups` (OrganizationId, Status, Priority DESC, FirstSeen DESC, GroupId DESC)
  STORING (ProjectId, Substatus, Type, Category, Level, LastSeen, TimesSeen, FirstRelease, Assignee);

-- sort=freq (TimesSeen), organization-wide.
CREATE INDEX GroupsByOrganizationTimesSeen ON `Groups` (OrganizationId, Status, Priority DESC, TimesSeen DESC, GroupId DESC)
  STORING (ProjectId, Substatus, Type, Category, Level, FirstSeen, LastSeen, FirstRelease, Assignee);

-- The same three for queries naming a few projects (one range per project instead of a residual filter).
CREATE INDEX GroupsByProjectLastSeen ON `Groups` (ProjectId, Status, Priority DESC, LastSeen DESC, GroupId DESC)
  STORING (OrganizationId, Substatus, Type, Category, Level, FirstSeen, TimesSeen, FirstRelease, Assignee);

CREATE INDEX GroupsByProjectFirstSeen ON `Groups` (ProjectId, Status, Priority DESC, FirstSeen DESC, GroupId DESC)
  STORING (OrganizationId, Substatus, Type, Category, Level, LastSeen, TimesSeen, FirstRelease, Assignee);

CREATE INDEX GroupsByProjectTimesSeen ON `Groups` (ProjectId, Status, Priority DESC, TimesSeen DESC, GroupId DESC)
  STORING (OrganizationId, Substatus, Type, Category, Level, FirstSeen, LastSeen, FirstRelease, Assignee);

-- The releases a group was seen in (Sentry's GroupRelease without environment): the issue index's `release:`
-- filter looks up (GroupId, Release) pairs by primary key for a page's candidates. Written by the pipeline's
-- Spanner writer, one blind insert_or_update per attached occurrence whose event names a release (a pure
-- relation, so the write needs no read). Occurrences.Release holds the same facts, but checking it means
-- reading every occurrence of a group, while this table has one row per (group, release).
CREATE TABLE GroupReleases (
  GroupId INT64 NOT NULL,
  Release STRING(MAX) NOT NULL,
) PRIMARY KEY (GroupId, Release),
  INTERLEAVE IN PARENT `Groups` ON DELETE CASCADE;

-- The latest release of a project (bulk update's statusDetails.inNextRelease): one row from the top of the range.
CREATE INDEX ReleasesByProjectFirstSeen ON Releases (ProjectId, FirstSeen DESC);

-- The occurrence's event, when it came with one (event path): stored on the occurrence's row rather than as an
-- Events row, so an attached occurrence costs one row. Lookups find it through OccurrencesByStoredEvent. An event
-- stored this way goes when its group is deleted.
ALTER TABLE Occurrences ADD COLUMN StoredEventId STRING(32);

ALTER TABLE Occurrences ADD COLUMN EventPayload JSON;

-- Event lookups (project, event id) -> the occurrence that stored the event; only occurrences that did.
CREATE NULL_FILTERED INDEX OccurrencesByStoredEvent ON Occurrences (ProjectId, StoredEventId);

-- ---------------------------------------------------------------------------------------------------------------
-- The issue pages of the web interface (web/, docs/web.md), read by api/issue_details.py.

-- A group's occurrences by event time, newest first: the events-over-time chart and sparklines count the
-- occurrences of a time window with one key-range read per group (no other occurrence of the group is read),
-- and the latest event is the first entry. OccurrenceId breaks ties, so a long window is read in chunks, each
-- resuming after the last key read. Interleaved in Groups, so each group's entries sit with its rows.
CREATE INDEX OccurrencesByGroupEventTime ON Occurrences (GroupId, EventTime DESC, OccurrenceId),
  INTERLEAVE IN `Groups`;

-- A group's activity history newest first, read a page at a time.
CREATE INDEX ActivitiesByGroupTime ON Activities (GroupId, ActivityTime DESC) STORING (Type, Data),
  INTERLEAVE IN `Groups`;

-- The issue index's regressed_in_release: a group's regression activities (Type 6, SET_REGRESSION, whose Data
-- names the release) by key for a page's candidates, instead of reading every activity of each group.
CREATE INDEX ActivitiesByGroupType ON Activities (GroupId, Type) STORING (Data), INTERLEAVE IN `Groups`;

-- The issue index's event-id lookup (a query that is an event id finds the groups holding that event, as in
-- Sentry): (project, event id) -> the occurrences, and so the groups, of every attached occurrence.
CREATE INDEX OccurrencesByEvent ON Occurrences (ProjectId, EventId);

-- Tags of a group (Sentry's GroupTagKey and GroupTagValue) and its free-text terms, written by the pipeline's
-- Spanner writer (transforms/storage/tag_writer.py) in the commit that writes each occurrence's row for the first time,
-- and read by the issue index (api/tag_index.py; docs/issue-index.md "Tags and free text").
--
-- GroupTagValues: one row per (group, tag key, tag value): TimesSeen is the number of the group's occurrences
-- with that tag, FirstSeen and LastSeen the earliest and latest of their event times. Keys starting with '@'
-- (which no tag key can) are for search only and are not listed as tags: the user's id, email, username and
-- IP (@user.id ...), the SDK's name and version (@sdk.name, @sdk.version), and the group's free-text terms
-- (@text, one row per word of its occurrences' titles, subtitles and culprits); their rows only record that
-- the group has the value (TimesSeen, FirstSeen and LastSeen are NULL).
-- GroupTagKeys: one row per (group, tag key): ValuesSeen counts the key's value rows, OtherCount the
-- occurrences whose value came after the key was full (docs/limits.md "Tags"), so that a key's total is the
-- sum of its values' TimesSeen plus OtherCount.
-- Both are interleaved in Groups and deleted with the group.
CREATE TABLE GroupTagKeys (
  GroupId INT64 NOT NULL,
  TagKey STRING(200) NOT NULL,
  OrganizationId INT64 NOT NULL,
  ProjectId INT64 NOT NULL,
  ValuesSeen INT64 NOT NULL,
  OtherCount INT64 NOT NULL,
) PRIMARY KEY (GroupId, TagKey),
  INTERLEAVE IN PARENT `Groups` ON DELETE CASCADE;

CREATE TABLE GroupTagValues (
  GroupId INT64 NOT NULL,
  TagKey STRING(200) NOT NULL,
  TagValue STRING(200) NOT NULL,
  OrganizationId INT64 NOT NULL,
  ProjectId INT64 NOT NULL,
  TimesSeen INT64,
  FirstSeen TIMESTAMP,
  LastSeen TIMESTAMP,
) PRIMARY KEY (GroupId, TagKey, TagValue),
  INTERLEAVE IN PARENT `Groups` ON DELETE CASCADE;

-- Candidates of a tag, search or free-text filter: the groups of an organization (or of one of its projects)
-- with key = value, or with a value starting with a prefix, as one key range. The indexed columns never change
-- once a row exists (counts and times are updated alone), so counting an occurrence rewrites no index entry.
CREATE INDEX GroupTagValuesByValue ON GroupTagValues (OrganizationId, TagKey, TagValue, ProjectId, GroupId);

-- Candidates of has:key, the same way.
CREATE INDEX GroupTagKeysByKey ON GroupTagKeys (OrganizationId, TagKey, ProjectId, GroupId);

-- Keys whose saved state holds occurrences waiting for their event (transforms/waiting_keys.py): written when a
-- key starts waiting, before the state it waits in is committed, and deleted once nothing waits. A streaming
-- pipeline reads it when it starts and takes these keys up, so what waited across a stop is settled without
-- waiting for the key's next message. A hint: a row whose key no longer waits costs one wake-up.
CREATE TABLE WaitingKeys (
  ProjectId INT64 NOT NULL,
  PrimaryHash STRING(32) NOT NULL,
  Since TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (ProjectId, PrimaryHash);

-- Each organization's word vocabulary: one row per distinct word of its groups' @text rows (GroupTagValues),
-- so that a free-text infix wildcard (*timeout*), which no range of GroupTagValuesByValue can seek, is matched
-- against the organization's distinct words instead of one row per group per word (api/tag_index.py). Written
-- by the tag writer (transforms/storage/tag_writer.py) with insert_or_update in the commit that inserts a new
-- @text row: a set, so retries, replays and a backfill over streamed data write the same rows. A word stays
-- when its groups are deleted (a word without groups finds none). The row (0, '') is no word: it says that
-- every organization's vocabulary is complete (transforms/storage/org_words.py): written when the database is
-- created with this table, or by `pipeline.admin fill-vocabularies` for a database that had @text rows before.
CREATE TABLE OrgWords (
  OrganizationId INT64 NOT NULL,
  Word STRING(200) NOT NULL,
) PRIMARY KEY (OrganizationId, Word);
