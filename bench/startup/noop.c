/* SPDX-License-Identifier: Apache-2.0 */
/*
 * noop.c - a program that does nothing, linked with the libraries dmclient
 * needs at start (libxml2, libcrypto): the floor that bench/startup.sh
 * measures dmclient's start-up and peak RSS against.
 */
int main(void)
{
    return 0;
}
