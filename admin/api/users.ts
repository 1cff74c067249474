/**
 * Users and roles (the registry lets only admins do any of this).
 *
 * GET    /api/users
 * POST   /api/users                         {name, password, roles:[{application, role}]}
 * PUT    /api/users/:name/password          {password}
 * POST   /api/users/:name/grants            {application, role}
 * DELETE /api/users/:name/grants/:application
 * DELETE /api/users/:name
 */
import { z } from "zod";
import { body } from "../body";
import { asUser, type AdminRouter } from "../context";
import { Name } from "./schemas";

const Grant = z.object({
  application: z.string().trim().min(1, "application is required (or *)").max(128),
  role: z.enum(["admin", "operator", "viewer"], { message: "role must be admin, operator or viewer" }),
});
const CreateUser = z.object({
  name: Name,
  password: z.string().min(8, "password must have at least 8 characters").max(1024),
  roles: z.array(Grant).default([]),
});
const Password = z.object({ password: z.string().min(8, "password must have at least 8 characters").max(1024) });

export function userRoutes(router: AdminRouter): void {
  router.get("/api/users", async (ctx) => {
    ctx.body = await ctx.admin.registry.admin.listUsers({}, asUser(ctx));
  });

  router.post("/api/users", async (ctx) => {
    const input = await body(ctx, CreateUser, ctx.admin.options.maxJsonBytes);
    ctx.status = 201;
    ctx.body = await ctx.admin.registry.admin.createUser(input, asUser(ctx));
  });

  router.put("/api/users/:name/password", async (ctx) => {
    const input = await body(ctx, Password, ctx.admin.options.maxJsonBytes);
    await ctx.admin.registry.admin.setPassword({ name: ctx.params.name, password: input.password }, asUser(ctx));
    ctx.status = 204;
  });

  router.post("/api/users/:name/grants", async (ctx) => {
    const grant = await body(ctx, Grant, ctx.admin.options.maxJsonBytes);
    ctx.body = await ctx.admin.registry.admin.grant({ name: ctx.params.name, grant }, asUser(ctx));
  });

  router.delete("/api/users/:name/grants/:application", async (ctx) => {
    ctx.body = await ctx.admin.registry.admin.revoke({ name: ctx.params.name, application: ctx.params.application }, asUser(ctx));
  });

  router.delete("/api/users/:name", async (ctx) => {
    await ctx.admin.registry.admin.deleteUser({ name: ctx.params.name }, asUser(ctx));
    ctx.status = 204;
  });
}
