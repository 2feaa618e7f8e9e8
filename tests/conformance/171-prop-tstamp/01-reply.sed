# SPDX-License-Identifier: Apache-2.0
s|<Data>[0-9]\{8\}T[0-9]\{6\}Z</Data>|<Data>YYYYMMDDThhmmssZ</Data>|
