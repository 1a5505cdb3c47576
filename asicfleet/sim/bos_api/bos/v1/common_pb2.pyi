from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class SaveAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAVE_ACTION_UNSPECIFIED: _ClassVar[SaveAction]
    SAVE_ACTION_SAVE: _ClassVar[SaveAction]
    SAVE_ACTION_SAVE_AND_APPLY: _ClassVar[SaveAction]
    SAVE_ACTION_SAVE_AND_FORCE_APPLY: _ClassVar[SaveAction]
SAVE_ACTION_UNSPECIFIED: SaveAction
SAVE_ACTION_SAVE: SaveAction
SAVE_ACTION_SAVE_AND_APPLY: SaveAction
SAVE_ACTION_SAVE_AND_FORCE_APPLY: SaveAction
