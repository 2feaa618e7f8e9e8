# SPDX-License-Identifier: Apache-2.0
s|<Data>[0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}T[0-9]\{2\}:[0-9]\{2\}:[0-9]\{2\}[+-][0-9]\{2\}:[0-9]\{2\}</Data>|<Data>YYYY-MM-DDThh:mm:ss+hh:mm</Data>|
