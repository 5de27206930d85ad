// The .proto files of proto/, loaded at run time with protobufjs, and the glue that turns a
// protobufjs service into a grpc-js service definition. No generated code, no proto-loader.

import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** protoDirSearchDepthMax bounds how many directories protoDir climbs from this module. */
const protoDirSearchDepthMax = 6;

/** ProtoLoadError is thrown when the proto directory or a type or service in it cannot be found. */
export class ProtoLoadError extends Error {
  override readonly name = 'ProtoLoadError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * protoDir returns the absolute path of the project's proto/ directory: the first ancestor of this
 * module's directory that holds both package.json and proto/. That is two levels up from
 * src/rpc (vitest, tsx) and three from dist/src/rpc (compiled). Throws ProtoLoadError if none does.
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < protoDirSearchDepthMax; depth++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ProtoLoadError(`no proto/ directory next to a package.json above ${fileURLToPath(import.meta.url)}`);
}

let rootCache: protobuf.Root | undefined;
/** typeCache: Root.lookupType walks the namespace tree; codecs on the commit path ask for a type per entry. */
const typeCache = new Map<string, protobuf.Type>();

/**
 * protoRoot returns the protobufjs Root of every proto/*.proto file, loaded once and resolved.
 * Field names are camelCase (cluster_id becomes clusterId). Throws ProtoLoadError on a parse error.
 */
export function protoRoot(): protobuf.Root {
  if (rootCache !== undefined) return rootCache;
  const dir = protoDir();
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.proto'))
    .sort()
    .map((name) => join(dir, name));
  try {
    const root = new protobuf.Root();
    root.loadSync(files, { keepCase: false });
    root.resolveAll();
    rootCache = root;
    return root;
  } catch (error) {
    throw new ProtoLoadError(`cannot load ${files.join(', ')}: ${String(error)}`, { cause: error });
  }
}

/** protoType returns the message type with the given fully qualified name; throws ProtoLoadError. */
export function protoType(fullName: string): protobuf.Type {
  const cached = typeCache.get(fullName);
  if (cached !== undefined) return cached;
  try {
    const type = protoRoot().lookupType(fullName);
    typeCache.set(fullName, type);
    return type;
  } catch (error) {
    throw new ProtoLoadError(`no message type ${fullName} in proto/`, { cause: error });
  }
}

/** protoService returns the service with the given fully qualified name; throws ProtoLoadError. */
export function protoService(fullName: string): protobuf.Service {
  try {
    return protoRoot().lookupService(fullName);
  } catch (error) {
    throw new ProtoLoadError(`no service ${fullName} in proto/`, { cause: error });
  }
}

/**
 * protoConversionDefault is how decoded messages become plain objects unless told otherwise:
 * 64-bit integers as strings (never silently rounded), enums by name, oneof names included.
 */
export const protoConversionDefault: protobuf.IConversionOptions = Object.freeze({
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
});

/**
 * protoSerializer returns a grpc-js serializer for the type: a plain object is converted with
 * fromObject (which throws on a value of the wrong type) and encoded.
 */
export function protoSerializer<T extends object>(type: protobuf.Type): grpc.serialize<T> {
  return (value: T): Buffer => {
    const message = value instanceof type.ctor ? value : type.fromObject(value as Record<string, unknown>);
    return bufferOf(type.encode(message).finish());
  };
}

/**
 * protoDeserializer returns a grpc-js deserializer for the type: decode, then toObject with the
 * given conversion. It throws on bytes that are not the type; grpc-js turns that into a status.
 */
export function protoDeserializer<T extends object>(
  type: protobuf.Type,
  conversion: protobuf.IConversionOptions = protoConversionDefault,
): grpc.deserialize<T> {
  return (bytes: Buffer): T => type.toObject(type.decode(bytes), conversion) as T;
}

/** rawSerializer passes bytes through: for handlers that encode and decode frames themselves. */
export function rawSerializer(value: Uint8Array): Buffer {
  return bufferOf(value);
}

/** rawDeserializer passes bytes through: for handlers that decode, and reject, frames themselves. */
export function rawDeserializer(bytes: Buffer): Buffer {
  return bytes;
}

/** ServiceCodec says how a service definition serializes: protobufjs objects, or raw bytes. */
export type ServiceCodec = { readonly kind: 'protobuf'; readonly conversion?: protobuf.IConversionOptions } | { readonly kind: 'raw' };

/**
 * grpcServiceDefinition returns the grpc-js definition of the named service, usable both by
 * Server.addService and by makeGenericClientConstructor. Methods are keyed by their proto name
 * (`Stream`) with the lower camel case name (`stream`) as originalName, as proto-loader does.
 * With codec 'raw', requests and responses are Buffers and the handler owns encoding.
 */
export function grpcServiceDefinition(
  serviceFullName: string,
  codec: ServiceCodec = { kind: 'protobuf' },
): grpc.ServiceDefinition {
  const service = protoService(serviceFullName);
  const path = service.fullName.replace(/^\./, '');
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methodsArray) {
    definition[method.name] = methodDefinition(`/${path}/${method.name}`, method, codec);
  }
  return definition;
}

function methodDefinition(
  path: string,
  method: protobuf.Method,
  codec: ServiceCodec,
): grpc.MethodDefinition<unknown, unknown> {
  const common = {
    path,
    requestStream: method.requestStream === true,
    responseStream: method.responseStream === true,
    originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
  };
  if (codec.kind === 'raw') {
    return {
      ...common,
      requestSerialize: rawSerializer as grpc.serialize<unknown>,
      requestDeserialize: rawDeserializer,
      responseSerialize: rawSerializer as grpc.serialize<unknown>,
      responseDeserialize: rawDeserializer,
    };
  }
  const requestType = method.resolvedRequestType ?? protoType(method.requestType);
  const responseType = method.resolvedResponseType ?? protoType(method.responseType);
  return {
    ...common,
    requestSerialize: protoSerializer(requestType) as grpc.serialize<unknown>,
    requestDeserialize: protoDeserializer(requestType, codec.conversion),
    responseSerialize: protoSerializer(responseType) as grpc.serialize<unknown>,
    responseDeserialize: protoDeserializer(responseType, codec.conversion),
  };
}

/** bufferOf views the bytes as a Buffer without copying. */
export function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
