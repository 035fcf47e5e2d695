from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestMessage(_message.Message):
    __slots__ = ("occurrence", "status_change")
    OCCURRENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGE_FIELD_NUMBER: _ClassVar[int]
    occurrence: Occurrence
    status_change: StatusChange
    def __init__(self, occurrence: _Optional[_Union[Occurrence, _Mapping]] = ..., status_change: _Optional[_Union[StatusChange, _Mapping]] = ...) -> None: ...

class Time(_message.Message):
    __slots__ = ("epoch_seconds_int", "epoch_seconds", "iso8601")
    EPOCH_SECONDS_INT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ISO8601_FIELD_NUMBER: _ClassVar[int]
    epoch_seconds_int: int
    epoch_seconds: float
    iso8601: str
    def __init__(self, epoch_seconds_int: _Optional[int] = ..., epoch_seconds: _Optional[float] = ..., iso8601: _Optional[str] = ...) -> None: ...

class EvidenceItem(_message.Message):
    __slots__ = ("name", "value", "important")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IMPORTANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    important: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., important: _Optional[bool] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Occurrence(_message.Message):
    __slots__ = ("id", "project_id", "event_id", "fingerprint", "issue_title", "subtitle", "resource_id", "evidence_data", "evidence_display", "type", "detection_time", "level", "culprit", "initial_issue_priority", "priority", "assignee", "is_buffered_spans", "event")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ISSUE_TITLE_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_DATA_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_DISPLAY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DETECTION_TIME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CULPRIT_FIELD_NUMBER: _ClassVar[int]
    INITIAL_ISSUE_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    IS_BUFFERED_SPANS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: int
    event_id: str
    fingerprint: _containers.RepeatedScalarFieldContainer[str]
    issue_title: str
    subtitle: str
    resource_id: str
    evidence_data: _struct_pb2.Struct
    evidence_display: _containers.RepeatedCompositeFieldContainer[EvidenceItem]
    type: int
    detection_time: Time
    level: str
    culprit: str
    initial_issue_priority: int
    priority: int
    assignee: str
    is_buffered_spans: bool
    event: Event
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[int] = ..., event_id: _Optional[str] = ..., fingerprint: _Optional[_Iterable[str]] = ..., issue_title: _Optional[str] = ..., subtitle: _Optional[str] = ..., resource_id: _Optional[str] = ..., evidence_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., evidence_display: _Optional[_Iterable[_Union[EvidenceItem, _Mapping]]] = ..., type: _Optional[int] = ..., detection_time: _Optional[_Union[Time, _Mapping]] = ..., level: _Optional[str] = ..., culprit: _Optional[str] = ..., initial_issue_priority: _Optional[int] = ..., priority: _Optional[int] = ..., assignee: _Optional[str] = ..., is_buffered_spans: _Optional[bool] = ..., event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "project_id", "platform", "timestamp", "received", "tags", "release", "environment", "dist", "transaction", "server_name", "sdk", "user", "request", "contexts", "trace_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DIST_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    project_id: int
    platform: str
    timestamp: Time
    received: Time
    tags: _containers.RepeatedCompositeFieldContainer[Tag]
    release: str
    environment: str
    dist: str
    transaction: str
    server_name: str
    sdk: _struct_pb2.Struct
    user: _struct_pb2.Struct
    request: _struct_pb2.Struct
    contexts: _struct_pb2.Struct
    trace_id: str
    def __init__(self, event_id: _Optional[str] = ..., project_id: _Optional[int] = ..., platform: _Optional[str] = ..., timestamp: _Optional[_Union[Time, _Mapping]] = ..., received: _Optional[_Union[Time, _Mapping]] = ..., tags: _Optional[_Iterable[_Union[Tag, _Mapping]]] = ..., release: _Optional[str] = ..., environment: _Optional[str] = ..., dist: _Optional[str] = ..., transaction: _Optional[str] = ..., server_name: _Optional[str] = ..., sdk: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., user: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., contexts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("type", "version")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    type: str
    version: str
    def __init__(self, type: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("id", "project_id", "fingerprint", "new_status", "new_substatus", "resolution")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NEW_STATUS_FIELD_NUMBER: _ClassVar[int]
    NEW_SUBSTATUS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: int
    fingerprint: _containers.RepeatedScalarFieldContainer[str]
    new_status: int
    new_substatus: int
    resolution: Resolution
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[int] = ..., fingerprint: _Optional[_Iterable[str]] = ..., new_status: _Optional[int] = ..., new_substatus: _Optional[int] = ..., resolution: _Optional[_Union[Resolution, _Mapping]] = ...) -> None: ...
